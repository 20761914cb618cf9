/* Event queue: order across the two rings, overflow policy, batching, partial writes. */
#include <errno.h>
#include <string.h>

#include "bb_core.h"
#include "bb_proto.h"
#include "fake_port.h"
#include "tb.h"
#include "tb_msg.h"
#include "tests.h"

static const bb_addr_t peer = {BB_ADDR_TYPE_RANDOM, {6, 5, 4, 3, 2, 0xC1}};

static void scan(int8_t rssi, uint8_t tag)
{
    uint8_t adv[20];
    memset(adv, tag, sizeof(adv));
    adv[0] = 19;  /* one AD structure */
    bb_on_scan_result(&peer, BB_ADV_TYPE_ADV_IND, rssi, adv, sizeof(adv));
}

static void boot_event_is_sent_at_init(void)
{
    tb_boot();
    tb_drain();
    const tb_evt_t *e = tb_evt(BB_EV_BOOT);
    TB_CHECK(e != NULL);
    TB_CHECK_EQ(tb_field_u32(e, 0), 0xB007);
    TB_CHECK_EQ(tb_field_u32(e, 1), BB_PROTO_MAJOR);
    TB_CHECK_EQ(tb_out.evt[0].code, BB_EV_BOOT);
}

static void events_keep_their_order_across_both_rings(void)
{
    tb_boot();
    scan(-50, 1);
    bb_on_central_connect(1, &peer);
    scan(-50, 2);
    bb_on_mtu_exchanged(1, 100);
    bb_log(2, "hello");
    bb_on_scan_done();
    tb_drain();
    const uint32_t want[] = {BB_EV_BOOT, BB_EV_SCAN_RESULT, BB_EV_CENTRAL_CONNECT, BB_EV_SCAN_RESULT,
                             BB_EV_MTU_EXCHANGED, BB_EV_LOG, BB_EV_SCAN_DONE};
    TB_CHECK_EQ(tb_out.nevt, 7);
    for (unsigned i = 0; i < 7; i++) {
        TB_CHECK_EQ(tb_out.evt[i].code, want[i]);
    }
}

static void several_events_share_one_frame_as_batch(void)
{
    tb_boot();
    for (int i = 0; i < 5; i++) {
        bb_on_mtu_exchanged((uint16_t)i, 100);
    }
    tb_drain();
    TB_CHECK_EQ(tb_out.nevt, 6);
    TB_CHECK_EQ(tb_out.frames, 1);
    TB_CHECK_EQ(tb_out.batches, 1);
}

static void single_event_goes_as_plain_event_frame(void)
{
    tb_boot();
    tb_drain();
    TB_CHECK_EQ(tb_out.frames, 1);
    TB_CHECK_EQ(tb_out.batches, 0);
    TB_CHECK_EQ(tb_out.nevt, 1);
}

static void full_droppable_ring_evicts_oldest_scan_results(void)
{
    tb_boot();
    for (int i = 0; i < 200; i++) {
        scan(-40, (uint8_t)(i + 1));
    }
    TB_CHECK(bb_core_evq.dropped_scan > 0);
    uint32_t dropped = bb_core_evq.dropped_scan;
    tb_drain();
    unsigned kept = tb_evt_count(BB_EV_SCAN_RESULT);
    TB_CHECK_EQ(kept + dropped, 200);
    /* The newest report survived; the first kept one is the oldest not evicted. */
    const tb_evt_t *last = NULL;
    for (unsigned i = 0; i < tb_out.nevt; i++) {
        if (tb_out.evt[i].code == BB_EV_SCAN_RESULT) {
            last = &tb_out.evt[i];
        }
    }
    const uint8_t *p;
    TB_CHECK_EQ(tb_field_bytes(last, 4, &p), 20);
    TB_CHECK_EQ(p[1], 200);
    TB_CHECK_EQ(tb_field_bytes(tb_evt(BB_EV_SCAN_RESULT), 4, &p), 20);
    TB_CHECK_EQ(p[1], dropped + 1);
}

static void eviction_reported_by_events_dropped_first(void)
{
    tb_boot();
    for (int i = 0; i < 200; i++) {
        scan(-40, 1);
    }
    tb_drain();
    const tb_evt_t *d = tb_evt(BB_EV_EVENTS_DROPPED);
    TB_CHECK(d != NULL);
    TB_CHECK(d == &tb_out.evt[0]);
    TB_CHECK_EQ(tb_field_u32(d, 0), bb_core_evq.dropped_scan);
    TB_CHECK_EQ(tb_field_u32(d, 1), 0);
}

static void full_reliable_ring_refuses_event_with_enomem(void)
{
    tb_boot();
    static uint8_t data[BB_MAX_L2CAP_SDU];
    int rc = 0;
    unsigned accepted = 0;
    for (int i = 0; i < 20 && rc == 0; i++) {
        rc = bb_on_l2cap_recv(1, 0x40, data, sizeof(data));
        accepted += rc == 0;
    }
    TB_CHECK_EQ(rc, -ENOMEM);
    TB_CHECK_EQ(bb_core_evq.dropped_other, 1);
    tb_drain();
    TB_CHECK_EQ(tb_evt_count(BB_EV_L2CAP_RECV), accepted);
    const tb_evt_t *d = tb_evt(BB_EV_EVENTS_DROPPED);
    TB_CHECK(d != NULL);
    TB_CHECK_EQ(tb_field_u32(d, 1), 1);
}

static void refused_event_held_back_by_the_port_is_a_stall_not_a_drop(void)
{
    tb_boot();
    fp.caps.holds_back_events = true;
    bb_core_init();
    static uint8_t data[BB_MAX_L2CAP_SDU];
    int rc = 0;
    for (int i = 0; i < 20 && rc == 0; i++) {
        rc = bb_on_l2cap_recv(1, 0x40, data, sizeof(data));
    }
    TB_CHECK_EQ(rc, -ENOMEM);
    TB_CHECK_EQ(bb_core_evq.stalled, 1);
    TB_CHECK_EQ(bb_core_evq.dropped_other, 0);
    tb_drain();
    TB_CHECK(tb_evt(BB_EV_EVENTS_DROPPED) == NULL);
}

static void scan_results_never_evict_reliable_events(void)
{
    tb_boot();
    bb_on_central_connect(4, &peer);
    for (int i = 0; i < 300; i++) {
        scan(-40, 1);
    }
    tb_drain();
    TB_CHECK_EQ(tb_evt_count(BB_EV_CENTRAL_CONNECT), 1);
    TB_CHECK_EQ(bb_core_evq.dropped_other, 0);
}

static void events_dropped_is_sent_at_most_once_per_interval(void)
{
    tb_boot();
    for (int i = 0; i < 200; i++) {
        scan(-40, 1);
    }
    tb_drain();
    for (int i = 0; i < 200; i++) {
        scan(-40, 1);
    }
    tb_drain();
    TB_CHECK_EQ(tb_evt_count(BB_EV_EVENTS_DROPPED), 1);
    fp.now_ms += BB_DEFAULTS_DIAG_SCAN_DROP_EVENT_MS;
    tb_drain();
    TB_CHECK_EQ(tb_evt_count(BB_EV_EVENTS_DROPPED), 2);
}

static void partial_transport_writes_are_completed_in_order(void)
{
    tb_boot();
    fp.write_limit = 3;
    for (int i = 0; i < 10; i++) {
        bb_on_gattc_notify(1, (uint16_t)(20 + i), (const uint8_t *)"0123456789", 10);
    }
    for (int i = 0; i < 3; i++) {
        fp.write_stall = 1;
        bb_core_poll();
    }
    tb_drain();
    TB_CHECK_EQ(tb_evt_count(BB_EV_GATTC_NOTIFY), 10);
    TB_CHECK_EQ(tb_field_u32(&tb_out.evt[10], 1), 29);
    TB_CHECK_EQ(tb_out.other, 0);
}

static void scan_rssi_filter_drops_weak_reports(void)
{
    tb_boot();
    tb_activate();
    tb_req(1, BB_M_GAP_SCAN_START, "uuubbi", 0, 1, 1, 0, 0, -60);
    tb_drain();
    scan(-70, 1);
    scan(-60, 2);
    tb_drain();
    TB_CHECK_EQ(tb_evt_count(BB_EV_SCAN_RESULT), 1);
    TB_CHECK_EQ(tb_field_i32(tb_evt(BB_EV_SCAN_RESULT), 3), -60);
    TB_CHECK_EQ(bb_core_evq.dropped_scan, 0);
}

static void scan_prefix_filter_matches_ad_structures(void)
{
    tb_boot();
    tb_activate();
    /* prefixes: [len 2: type 0x09 'N'] , [len 1: type 0xFF] */
    const uint8_t prefixes[] = {2, 0x09, 'N', 1, 0xFF};
    tb_req(1, BB_M_GAP_SCAN_START, "uuubbny", 0, 1, 1, 0, 0, prefixes, sizeof(prefixes));
    tb_drain();
    const uint8_t flags_and_name[] = {2, 0x01, 0x06, 3, 0x09, 'N', 'o'};
    const uint8_t flags_and_other_name[] = {2, 0x01, 0x06, 3, 0x09, 'X', 'o'};
    const uint8_t manufacturer[] = {3, 0xFF, 0x4C, 0x00};
    bb_on_scan_result(&peer, 0, -40, flags_and_name, sizeof(flags_and_name));
    bb_on_scan_result(&peer, 0, -40, flags_and_other_name, sizeof(flags_and_other_name));
    bb_on_scan_result(&peer, 0, -40, manufacturer, sizeof(manufacturer));
    tb_drain();
    TB_CHECK_EQ(tb_evt_count(BB_EV_SCAN_RESULT), 2);
}

static void event_fields_follow_the_schema(void)
{
    tb_boot();
    bb_on_peripheral_disconnect(BB_CONN_NONE, &peer, 2);
    tb_drain();
    const tb_evt_t *e = tb_evt(BB_EV_PERIPHERAL_DISCONNECT);
    const uint8_t *p;
    TB_CHECK_EQ(e->nfields, 4);
    TB_CHECK_EQ(tb_field_u32(e, 0), BB_CONN_NONE);
    TB_CHECK_EQ(tb_field_u32(e, 1), BB_ADDR_TYPE_RANDOM);
    TB_CHECK_EQ(tb_field_bytes(e, 2, &p), 6);
    TB_CHECK_EQ(p[5], 0xC1);
    TB_CHECK_EQ(tb_field_u32(e, 3), 2);
}

void run_evq_tests(void)
{
    TB_RUN(boot_event_is_sent_at_init);
    TB_RUN(events_keep_their_order_across_both_rings);
    TB_RUN(several_events_share_one_frame_as_batch);
    TB_RUN(single_event_goes_as_plain_event_frame);
    TB_RUN(full_droppable_ring_evicts_oldest_scan_results);
    TB_RUN(eviction_reported_by_events_dropped_first);
    TB_RUN(full_reliable_ring_refuses_event_with_enomem);
    TB_RUN(refused_event_held_back_by_the_port_is_a_stall_not_a_drop);
    TB_RUN(scan_results_never_evict_reliable_events);
    TB_RUN(events_dropped_is_sent_at_most_once_per_interval);
    TB_RUN(partial_transport_writes_are_completed_in_order);
    TB_RUN(scan_rssi_filter_drops_weak_reports);
    TB_RUN(scan_prefix_filter_matches_ad_structures);
    TB_RUN(event_fields_follow_the_schema);
}
