/*
 * nrf_sd port: platform, SoftDevice start-up and configuration, status mapping, event pump.
 *
 * The SoftDevice is enabled once at boot and stays enabled: while it runs it owns the POWER
 * peripheral, and TinyUSB's USB power events then arrive as SoC events (forwarded below).
 * ble_active(false) and reset() restart it, which is the only way the SoftDevice offers to
 * drop every link and empty its GATT table in one step.
 */
#include <string.h>

#include "nrf_sdm.h"
#include "nrf_soc.h"
#include "nrf_nvic.h"

#include "bb_nrf_sd.h"

/* Linker symbol: first byte of application RAM; the SoftDevice may use everything below. */
extern uint32_t __data_start__[];

bb_nrf_conn_t bb_nrf_conns[BB_NRF_SD_MAX_CONNECTIONS];
bb_config_t bb_nrf_cfg;
uint16_t bb_nrf_att_mtu_max = BLE_GATT_ATT_MTU_DEFAULT;
uint8_t bb_nrf_stage;
bool bb_nrf_active;

static bb_port_caps_t s_caps;
static uint32_t s_boot_id;
static uint8_t s_critical_depth;             /* bb_port_critical_enter nesting */
static uint8_t s_critical_nested;            /* sd_nvic_critical_region_enter's flag, outermost */
static bool s_sd_enabled;                    /* sd_softdevice_enable and sd_ble_enable succeeded */
static bool s_have_static_addr;
static ble_gap_addr_t s_static_addr;
static uint8_t s_applied_addr_mode = 0xFF;   /* addr_mode last given to the stack */
static uint8_t s_conn_count;                 /* links the stack was configured for */

/* A start-up warning raised before bb_core_init() (bb_log would be lost then), sent by the first
 * bb_nrf_sd_poll(). */
static char s_boot_log[96];

/* One SoftDevice event, held here until every core callback it causes has been accepted. */
static uint32_t s_evt_buf[(BLE_EVT_LEN_MAX(BB_NRF_ATT_MTU_MAX) + 3) / 4];
static bool s_evt_held;

#ifndef BB_BOARD
#define BB_BOARD "nrf52840"
#endif

/* ------------------------------------------------------------------------------------------ */
/* Status mapping: the one table from SoftDevice return codes to errno.                        */
/* ------------------------------------------------------------------------------------------ */

static const struct {
    uint32_t nrf;
    uint8_t err;
} s_err_table[] = {
    {NRF_ERROR_SVC_HANDLER_MISSING, BB_STATUS_EOPNOTSUPP},
    {NRF_ERROR_INTERNAL, BB_STATUS_EIO},
    {NRF_ERROR_INVALID_PARAM, BB_STATUS_EINVAL},
    {NRF_ERROR_INVALID_ADDR, BB_STATUS_EINVAL},
    {NRF_ERROR_INVALID_FLAGS, BB_STATUS_EINVAL},
    {NRF_ERROR_INVALID_DATA, BB_STATUS_EINVAL},
    {NRF_ERROR_INVALID_LENGTH, BB_STATUS_EINVAL},
    {NRF_ERROR_NULL, BB_STATUS_EINVAL},
    {NRF_ERROR_DATA_SIZE, BB_STATUS_E2BIG},
    {NRF_ERROR_INVALID_STATE, BB_STATUS_EPERM},
    {NRF_ERROR_FORBIDDEN, BB_STATUS_EPERM},
    {NRF_ERROR_SOFTDEVICE_NOT_ENABLED, BB_STATUS_EPERM},
    {NRF_ERROR_BUSY, BB_STATUS_EBUSY},
    {NRF_ERROR_NO_MEM, BB_STATUS_ENOMEM},
    {NRF_ERROR_CONN_COUNT, BB_STATUS_ENOMEM},
    {NRF_ERROR_RESOURCES, BB_STATUS_EAGAIN},      /* a TX queue is full: retry after TX done */
    {NRF_ERROR_NOT_FOUND, BB_STATUS_ENOENT},
    {NRF_ERROR_NOT_SUPPORTED, BB_STATUS_EOPNOTSUPP},
    {NRF_ERROR_TIMEOUT, BB_STATUS_ETIMEDOUT},    /* GATT timeout: the link cannot run ATT */
    {NRF_ERROR_SDM_LFCLK_SOURCE_UNKNOWN, BB_STATUS_EIO},
    {NRF_ERROR_SDM_INCORRECT_INTERRUPT_CONFIGURATION, BB_STATUS_EIO},
    {NRF_ERROR_SDM_INCORRECT_CLENR0, BB_STATUS_EIO},
    {BLE_ERROR_NOT_ENABLED, BB_STATUS_EPERM},
    {BLE_ERROR_INVALID_CONN_HANDLE, BB_STATUS_ENOTCONN},
    {BLE_ERROR_INVALID_ATTR_HANDLE, BB_STATUS_EINVAL},
    {BLE_ERROR_INVALID_ADV_HANDLE, BB_STATUS_EINVAL},
    {BLE_ERROR_INVALID_ROLE, BB_STATUS_EPERM},
    {BLE_ERROR_BLOCKED_BY_OTHER_LINKS, BB_STATUS_EBUSY},
    {BLE_ERROR_GAP_UUID_LIST_MISMATCH, BB_STATUS_EINVAL},
    {BLE_ERROR_GAP_DISCOVERABLE_WITH_WHITELIST, BB_STATUS_EINVAL},
    {BLE_ERROR_GAP_INVALID_BLE_ADDR, BB_STATUS_EINVAL},
    {BLE_ERROR_GAP_WHITELIST_IN_USE, BB_STATUS_EBUSY},
    {BLE_ERROR_GAP_DEVICE_IDENTITIES_IN_USE, BB_STATUS_EBUSY},
    {BLE_ERROR_GAP_DEVICE_IDENTITIES_DUPLICATE, BB_STATUS_EINVAL},
    {BLE_ERROR_GATTS_INVALID_ATTR_TYPE, BB_STATUS_EINVAL},
    {BLE_ERROR_GATTS_SYS_ATTR_MISSING, BB_STATUS_EAGAIN},
    {BLE_ERROR_GATTC_PROC_NOT_PERMITTED, BB_STATUS_EPERM},
};

int bb_nrf_err(uint32_t nrf_err)
{
    if (nrf_err == NRF_SUCCESS) {
        return 0;
    }
    for (size_t i = 0; i < sizeof s_err_table / sizeof s_err_table[0]; i++) {
        if (s_err_table[i].nrf == nrf_err) {
            return -(int)s_err_table[i].err;
        }
    }
    return -BB_STATUS_EIO;
}

/* GATT statuses 0x0101..0x01FF are ATT error codes offset by 0x0100. 0x0100 (ATTERR_INVALID,
 * "invalid error code") and BLE_GATT_STATUS_UNKNOWN would read as success once masked: they
 * become an unlikely error like anything else outside the ATT range. */
uint8_t bb_nrf_att_status(uint16_t gatt_status)
{
    if (gatt_status == BLE_GATT_STATUS_SUCCESS) {
        return 0;
    }
    if (gatt_status > BLE_GATT_STATUS_ATTERR_INVALID && gatt_status <= 0x01FFu) {
        return (uint8_t)(gatt_status & 0xFFu);
    }
    return BB_ATT_ERROR_UNLIKELY_ERROR;
}

uint16_t bb_nrf_mtu_ours(bb_nrf_conn_t *c)
{
    if (c != NULL && c->mtu_ours != 0) {
        return c->mtu_ours;
    }
    uint16_t m = bb_nrf_cfg.mtu > bb_nrf_att_mtu_max ? bb_nrf_att_mtu_max : bb_nrf_cfg.mtu;
    return m < BLE_GATT_ATT_MTU_DEFAULT ? BLE_GATT_ATT_MTU_DEFAULT : m;
}

void bb_nrf_att_timeout(uint16_t conn)
{
    /* ble_gattc.h/ble_gatts.h: after a GATT timeout "no new GATT procedure can be performed
     * without reestablishing the connection"; DISCONNECTED follows and reports the rest. */
    (void)sd_ble_gap_disconnect(conn, BLE_HCI_REMOTE_USER_TERMINATED_CONNECTION);
}

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                                 */
/* ------------------------------------------------------------------------------------------ */

bb_nrf_conn_t *bb_nrf_conn(uint16_t handle)
{
    for (size_t i = 0; i < BB_NRF_SD_MAX_CONNECTIONS; i++) {
        if (bb_nrf_conns[i].used && bb_nrf_conns[i].handle == handle) {
            return &bb_nrf_conns[i];
        }
    }
    return NULL;
}

void bb_nrf_addr_from_sd(bb_addr_t *out, const ble_gap_addr_t *in)
{
    out->type = in->addr_type == BLE_GAP_ADDR_TYPE_PUBLIC ? BB_ADDR_TYPE_PUBLIC : BB_ADDR_TYPE_RANDOM;
    memcpy(out->addr, in->addr, BB_ADDR_LEN);
}

/* A random address's kind is in its two top bits (Core spec Vol 6 Part B 1.3.2). */
void bb_nrf_addr_to_sd(ble_gap_addr_t *out, const bb_addr_t *in)
{
    memset(out, 0, sizeof *out);
    memcpy(out->addr, in->addr, BB_ADDR_LEN);
    if (in->type == BB_ADDR_TYPE_PUBLIC) {
        out->addr_type = BLE_GAP_ADDR_TYPE_PUBLIC;
    } else {
        switch (in->addr[5] >> 6) {
        case 3: out->addr_type = BLE_GAP_ADDR_TYPE_RANDOM_STATIC; break;
        case 1: out->addr_type = BLE_GAP_ADDR_TYPE_RANDOM_PRIVATE_RESOLVABLE; break;
        default: out->addr_type = BLE_GAP_ADDR_TYPE_RANDOM_PRIVATE_NON_RESOLVABLE; break;
        }
    }
}

/* Bluetooth Base UUID 00000000-0000-1000-8000-00805F9B34FB, little-endian. */
static const uint8_t s_base_uuid[16] = {0xFB, 0x34, 0x9B, 0x5F, 0x80, 0x00, 0x00, 0x80,
                                        0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};

void bb_nrf_uuid_from_le128(bb_uuid_t *out, const uint8_t le[16])
{
    if (memcmp(le, s_base_uuid, 12) == 0 && le[14] == 0 && le[15] == 0) {
        out->len = 2;
        out->bytes[0] = le[12];
        out->bytes[1] = le[13];
    } else {
        out->len = 16;
        memcpy(out->bytes, le, 16);
    }
}

int bb_nrf_uuid_to_sd(ble_uuid_t *out, const bb_uuid_t *in)
{
    uint8_t le[16];
    if (in->len == 2) {
        out->type = BLE_UUID_TYPE_BLE;
        out->uuid = (uint16_t)(in->bytes[0] | (in->bytes[1] << 8));
        return 0;
    }
    if (in->len == 4) {
        /* The SoftDevice knows only 16- and 128-bit UUIDs: widen over the Base UUID. */
        memcpy(le, s_base_uuid, 12);
        memcpy(le + 12, in->bytes, 4);
        if (in->bytes[2] == 0 && in->bytes[3] == 0) {
            out->type = BLE_UUID_TYPE_BLE;
            out->uuid = (uint16_t)(in->bytes[0] | (in->bytes[1] << 8));
            return 0;
        }
    } else if (in->len == 16) {
        memcpy(le, in->bytes, 16);
    } else {
        return -BB_STATUS_EINVAL;
    }
    bb_uuid_t narrowed;
    bb_nrf_uuid_from_le128(&narrowed, le);
    if (narrowed.len == 2) {
        return bb_nrf_uuid_to_sd(out, &narrowed);
    }
    /* vs_add returns the existing type when the base (all bytes but 12-13) is known. */
    ble_uuid128_t base;
    memcpy(base.uuid128, le, 16);
    uint8_t type;
    int err = bb_nrf_err(sd_ble_uuid_vs_add(&base, &type));
    if (err) {
        return err;
    }
    out->type = type;
    out->uuid = (uint16_t)(le[12] | (le[13] << 8));
    return 0;
}

bool bb_nrf_uuid_from_sd(bb_uuid_t *out, const ble_uuid_t *in)
{
    if (in->type == BLE_UUID_TYPE_UNKNOWN) {
        return false;
    }
    if (in->type == BLE_UUID_TYPE_BLE) {
        out->len = 2;
        out->bytes[0] = (uint8_t)in->uuid;
        out->bytes[1] = (uint8_t)(in->uuid >> 8);
        return true;
    }
    uint8_t len = 0;
    uint8_t le[16];
    if (sd_ble_uuid_encode(in, &len, le) != NRF_SUCCESS || len != 16) {
        return false;
    }
    bb_nrf_uuid_from_le128(out, le);
    return true;
}

bool bb_nrf_uuid_equal(const bb_uuid_t *a, const bb_uuid_t *b)
{
    return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

/* ------------------------------------------------------------------------------------------ */
/* SoftDevice start-up                                                                           */
/* ------------------------------------------------------------------------------------------ */

static void sd_fault(uint32_t id, uint32_t pc, uint32_t info)
{
    (void)id;
    (void)pc;
    (void)info;
    /* An assert inside the SoftDevice: nothing can continue safely. The host sees the reset
     * as a new boot_id in the BOOT event. */
    NVIC_SystemReset();
}

/* Links, ATT MTU, attribute table: the first rung the RAM given to the SoftDevice can hold is
 * used. The Adafruit linker script gives it 0x20000000..__data_start__ (0x20006000), 24 KB. */
static const struct {
    uint8_t periph, central;
    uint16_t mtu;
    uint32_t attr_tab;   /* bytes, a multiple of 4 */
} s_ladder[] = {
    {(BB_NRF_SD_MAX_CONNECTIONS + 1) / 2, BB_NRF_SD_MAX_CONNECTIONS / 2, BB_NRF_ATT_MTU_MAX,
     (BB_NRF_SD_ATTR_TAB_SIZE + 3u) & ~3u},
    {BB_NRF_SD_MAX_CONNECTIONS >= 3 ? 2 : 1, 1, BB_NRF_ATT_MTU_MAX, (BB_NRF_SD_ATTR_TAB_SIZE + 3u) & ~3u},
    {1, 1, BB_NRF_ATT_MTU_MAX, (BB_NRF_SD_ATTR_TAB_SIZE + 3u) & ~3u},
    {1, 1, 128, (BB_NRF_SD_ATTR_TAB_SIZE + 3u) & ~3u},
    {1, 1, BLE_GATT_ATT_MTU_DEFAULT, (BB_NRF_SD_ATTR_TAB_SIZE + 3u) & ~3u},
    {1, 1, BLE_GATT_ATT_MTU_DEFAULT, BLE_GATTS_ATTR_TAB_SIZE_DEFAULT},
};

/* sd_ble_cfg_set for one rung. A configuration set again replaces the earlier one (ble.h), so
 * rungs are tried one after the other on the same enabled SoftDevice. */
static uint32_t stack_configure(uint8_t periph, uint8_t central, uint16_t mtu, uint32_t attr_tab,
                                uint32_t ram)
{
    ble_cfg_t cfg;
    uint32_t e;

    memset(&cfg, 0, sizeof cfg);
    cfg.common_cfg.vs_uuid_cfg.vs_uuid_count = BB_NRF_VS_UUID_COUNT;
    if ((e = sd_ble_cfg_set(BLE_COMMON_CFG_VS_UUID, &cfg, ram)) != NRF_SUCCESS) return e;

    memset(&cfg, 0, sizeof cfg);
    cfg.gap_cfg.role_count_cfg.adv_set_count = BLE_GAP_ADV_SET_COUNT_MAX;
    cfg.gap_cfg.role_count_cfg.periph_role_count = periph;
    cfg.gap_cfg.role_count_cfg.central_role_count = central;
    cfg.gap_cfg.role_count_cfg.central_sec_count = central ? 1 : 0; /* pairings at once as central */
    if ((e = sd_ble_cfg_set(BLE_GAP_CFG_ROLE_COUNT, &cfg, ram)) != NRF_SUCCESS) return e;

    /* Device name: without this the stack takes at most BLE_GAP_DEVNAME_DEFAULT_LEN (31) bytes,
     * and config GAP_NAME allows BB_MAX_NAME. Stored in the stack (p_value NULL: empty until
     * config_apply), read-only for peers. */
    memset(&cfg, 0, sizeof cfg);
    BLE_GAP_CONN_SEC_MODE_SET_NO_ACCESS(&cfg.gap_cfg.device_name_cfg.write_perm);
    cfg.gap_cfg.device_name_cfg.vloc = BLE_GATTS_VLOC_STACK;
    cfg.gap_cfg.device_name_cfg.p_value = NULL;
    cfg.gap_cfg.device_name_cfg.current_len = 0;
    cfg.gap_cfg.device_name_cfg.max_len = BB_MAX_NAME;
    if ((e = sd_ble_cfg_set(BLE_GAP_CFG_DEVICE_NAME, &cfg, ram)) != NRF_SUCCESS) return e;

    memset(&cfg, 0, sizeof cfg);
    cfg.gatts_cfg.attr_tab_size.attr_tab_size = attr_tab;
    if ((e = sd_ble_cfg_set(BLE_GATTS_CFG_ATTR_TAB_SIZE, &cfg, ram)) != NRF_SUCCESS) return e;

    memset(&cfg, 0, sizeof cfg);
    cfg.gatts_cfg.service_changed.service_changed = 1;
    if ((e = sd_ble_cfg_set(BLE_GATTS_CFG_SERVICE_CHANGED, &cfg, ram)) != NRF_SUCCESS) return e;

    memset(&cfg, 0, sizeof cfg);
    cfg.conn_cfg.conn_cfg_tag = BB_NRF_CONN_CFG_TAG;
    cfg.conn_cfg.params.gap_conn_cfg.conn_count = (uint8_t)(periph + central);
    cfg.conn_cfg.params.gap_conn_cfg.event_length = BB_NRF_EVENT_LENGTH;
    if ((e = sd_ble_cfg_set(BLE_CONN_CFG_GAP, &cfg, ram)) != NRF_SUCCESS) return e;

    memset(&cfg, 0, sizeof cfg);
    cfg.conn_cfg.conn_cfg_tag = BB_NRF_CONN_CFG_TAG;
    cfg.conn_cfg.params.gatt_conn_cfg.att_mtu = mtu;
    if ((e = sd_ble_cfg_set(BLE_CONN_CFG_GATT, &cfg, ram)) != NRF_SUCCESS) return e;

    memset(&cfg, 0, sizeof cfg);
    cfg.conn_cfg.conn_cfg_tag = BB_NRF_CONN_CFG_TAG;
    cfg.conn_cfg.params.gatts_conn_cfg.hvn_tx_queue_size = BB_NRF_HVN_QUEUE;
    if ((e = sd_ble_cfg_set(BLE_CONN_CFG_GATTS, &cfg, ram)) != NRF_SUCCESS) return e;

    memset(&cfg, 0, sizeof cfg);
    cfg.conn_cfg.conn_cfg_tag = BB_NRF_CONN_CFG_TAG;
    cfg.conn_cfg.params.gattc_conn_cfg.write_cmd_tx_queue_size = BB_NRF_WRCMD_QUEUE;
    if ((e = sd_ble_cfg_set(BLE_CONN_CFG_GATTC, &cfg, ram)) != NRF_SUCCESS) return e;

    /* One credit-based channel per link; bb_nrf_l2cap keeps BB_NRF_SD_L2CAP_CHANNELS in all. */
    memset(&cfg, 0, sizeof cfg);
    cfg.conn_cfg.conn_cfg_tag = BB_NRF_CONN_CFG_TAG;
    cfg.conn_cfg.params.l2cap_conn_cfg.rx_mps = BB_NRF_L2CAP_MPS;
    cfg.conn_cfg.params.l2cap_conn_cfg.tx_mps = BB_NRF_L2CAP_MPS;
    cfg.conn_cfg.params.l2cap_conn_cfg.rx_queue_size = 1;
    cfg.conn_cfg.params.l2cap_conn_cfg.tx_queue_size = 1;
    cfg.conn_cfg.params.l2cap_conn_cfg.ch_count = 1;
    return sd_ble_cfg_set(BLE_CONN_CFG_L2CAP, &cfg, ram);
}

static void usb_power_release_for_sd(void);
static void usb_power_handover_to_sd(void);
static void usb_power_back_to_nrfx(void);

static void hex32(char *out, uint32_t v)
{
    static const char digits[] = "0123456789ABCDEF";
    out[0] = '0';
    out[1] = 'x';
    for (int i = 0; i < 8; i++) {
        out[2 + i] = digits[(v >> (28 - 4 * i)) & 0xFu];
    }
    out[10] = '\0';
}

/* Boot-time warning: "<text> <hex>" kept for the first poll. */
static void boot_log(const char *text, uint32_t value)
{
    size_t n = strlen(text);
    if (n + 12 > sizeof s_boot_log) {
        n = sizeof s_boot_log - 12;
    }
    memcpy(s_boot_log, text, n);
    s_boot_log[n] = ' ';
    hex32(s_boot_log + n + 1, value);
}

static int stack_start(void)
{
    /* LFXO: both the Feather nRF52840 and the PCA10059 dongle carry a 32.768 kHz crystal. */
    const nrf_clock_lf_cfg_t clock = {
        .source = NRF_CLOCK_LF_SRC_XTAL,
        .rc_ctiv = 0,
        .rc_temp_ctiv = 0,
        .accuracy = NRF_CLOCK_LF_ACCURACY_20_PPM,
    };
    s_sd_enabled = false;
    /* POWER belongs to the SoftDevice once enabled; the enable fails with
     * NRF_ERROR_SDM_INCORRECT_INTERRUPT_CONFIGURATION while TinyUSB's nrfx_power still has
     * POWER_CLOCK_IRQn enabled. */
    usb_power_release_for_sd();
    uint32_t e = sd_softdevice_enable(&clock, sd_fault);
    if (e != NRF_SUCCESS) {
        boot_log("nrf_sd: sd_softdevice_enable failed:", e);
        usb_power_back_to_nrfx();
        return bb_nrf_err(e);
    }
    usb_power_handover_to_sd();

    uint32_t ram_needed = 0;
    size_t rung = 0;
    for (; rung < sizeof s_ladder / sizeof s_ladder[0]; rung++) {
        uint32_t ram = (uint32_t)__data_start__;
        e = stack_configure(s_ladder[rung].periph, s_ladder[rung].central, s_ladder[rung].mtu,
                            s_ladder[rung].attr_tab, ram);
        if (e == NRF_SUCCESS) {
            e = sd_ble_enable(&ram);  /* NO_MEM: ram is now the RAM start this rung needs */
        }
        if (e == NRF_SUCCESS) {
            break;
        }
        if (ram_needed == 0 && e == NRF_ERROR_NO_MEM && ram > (uint32_t)__data_start__) {
            ram_needed = ram;
        }
        if (e != NRF_ERROR_NO_MEM && e != NRF_ERROR_RESOURCES) {
            break;  /* not a size problem (RESOURCES: L2CAP channels over all links) */
        }
    }
    if (e != NRF_SUCCESS) {
        boot_log("nrf_sd: sd_ble_enable failed:", e);
        (void)sd_softdevice_disable();
        usb_power_back_to_nrfx();
        return bb_nrf_err(e);
    }
    s_conn_count = (uint8_t)(s_ladder[rung].periph + s_ladder[rung].central);
    if (s_conn_count > BB_NRF_SD_MAX_CONNECTIONS) {
        s_conn_count = BB_NRF_SD_MAX_CONNECTIONS;
    }
    bb_nrf_att_mtu_max = s_ladder[rung].mtu;
    if (rung > 0) {
        boot_log(ram_needed ? "nrf_sd: SoftDevice RAM too small, fewer links/MTU/attributes; full set needs RAM start"
                            : "nrf_sd: SoftDevice configuration stepped down, rung",
                 ram_needed ? ram_needed : (uint32_t)rung);
    }
    s_sd_enabled = true;
    /* The SoftDevice raises SD_EVT_IRQn; events are pulled in loop(), so it stays masked. */
    (void)sd_nvic_DisableIRQ(SD_EVT_IRQn);

    ble_opt_t opt;
    memset(&opt, 0, sizeof opt);
    opt.common_opt.conn_evt_ext.enable = 1; /* longer connection events: throughput */
    (void)sd_ble_opt_set(BLE_COMMON_OPT_CONN_EVT_EXT, &opt);

    if (s_have_static_addr) {
        (void)sd_ble_gap_addr_set(&s_static_addr);
    }
    s_applied_addr_mode = 0xFF;
    memset(bb_nrf_conns, 0, sizeof bb_nrf_conns);
    s_evt_held = false;
    bb_nrf_gap_reset();
    bb_nrf_gatts_reset();
    bb_nrf_l2cap_reset();
    return 0;
}

int bb_nrf_stack_restart(void)
{
    (void)sd_softdevice_disable();
    s_sd_enabled = false;
    int err = stack_start();
    if (err == 0) {
        err = bb_port_config_apply(&bb_nrf_cfg);
    }
    return err;
}

/* ------------------------------------------------------------------------------------------ */
/* USB power events                                                                              */
/* ------------------------------------------------------------------------------------------ */

/* TinyUSB's nRF5x device driver: power event entry point (nrfx_power_usb_evt_t values). */
extern void tusb_hal_nrf_power_event(uint32_t event);

#include "nrfx_power.h"

void bb_nrf_usb_power_event(uint32_t nrfx_power_usb_evt)
{
    tusb_hal_nrf_power_event(nrfx_power_usb_evt);
}

/* Before the SoftDevice is enabled TinyUSB watches USB power through nrfx_power (Adafruit core,
 * usb_hardware_init); POWER is a SoftDevice peripheral, so that driver lets go of it first. */
static void usb_power_release_for_sd(void)
{
    nrfx_power_usbevt_disable();
    nrfx_power_usbevt_uninit();
    nrfx_power_uninit();
}

/* Without a SoftDevice (it failed to start): USB power events back through nrfx_power, as
 * before, so unplugging and plugging the host still works. */
static void usb_power_event_nrfx(nrfx_power_usb_evt_t event)
{
    bb_nrf_usb_power_event((uint32_t)event);
}

static void usb_power_back_to_nrfx(void)
{
    const nrfx_power_config_t pc = {0};
    (void)nrfx_power_init(&pc);
    const nrfx_power_usbevt_config_t uc = {.handler = usb_power_event_nrfx};
    nrfx_power_usbevt_init(&uc);
    nrfx_power_usbevt_enable();
}

/* Afterwards the SoftDevice owns POWER and reports the same three events as SoC events. A READY
 * that happened before the switch would be lost, so it is replayed when the pull-up is not yet
 * on. USB needs the HFXO: with the SoftDevice enabled it runs only while requested through it
 * (a SoftDevice restart resets the clock requests it had). */
static void usb_power_handover_to_sd(void)
{
    (void)sd_power_usbdetected_enable(1);
    (void)sd_power_usbpwrrdy_enable(1);
    (void)sd_power_usbremoved_enable(1);
    uint32_t status = 0;
    (void)sd_power_usbregstatus_get(&status);
    if (NRF_USBD->ENABLE) {
        (void)sd_clock_hfclk_request();
    }
    if ((status & POWER_USBREGSTATUS_OUTPUTRDY_Msk) && NRF_USBD->USBPULLUP == 0) {
        bb_nrf_usb_power_event(NRFX_POWER_USB_EVT_READY);
    }
}

static void soc_events_poll(void)
{
    uint32_t evt;
    while (sd_evt_get(&evt) == NRF_SUCCESS) {
        switch (evt) {
        case NRF_EVT_POWER_USB_DETECTED: bb_nrf_usb_power_event(NRFX_POWER_USB_EVT_DETECTED); break;
        case NRF_EVT_POWER_USB_POWER_READY: bb_nrf_usb_power_event(NRFX_POWER_USB_EVT_READY); break;
        case NRF_EVT_POWER_USB_REMOVED: bb_nrf_usb_power_event(NRFX_POWER_USB_EVT_REMOVED); break;
        default: break;
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Event pump                                                                                    */
/* ------------------------------------------------------------------------------------------ */

static int dispatch(const ble_evt_t *evt)
{
    uint16_t id = evt->header.evt_id;
    if (id == BLE_EVT_USER_MEM_REQUEST || id == BLE_EVT_USER_MEM_RELEASE) {
        return bb_nrf_gatts_on_event(evt);
    }
    if (id >= BLE_GAP_EVT_BASE && id <= BLE_GAP_EVT_LAST) {
        switch (id) {
        case BLE_GAP_EVT_SEC_PARAMS_REQUEST:
        case BLE_GAP_EVT_SEC_INFO_REQUEST:
        case BLE_GAP_EVT_PASSKEY_DISPLAY:
        case BLE_GAP_EVT_AUTH_KEY_REQUEST:
        case BLE_GAP_EVT_LESC_DHKEY_REQUEST:
        case BLE_GAP_EVT_AUTH_STATUS:
        case BLE_GAP_EVT_CONN_SEC_UPDATE:
        case BLE_GAP_EVT_SEC_REQUEST:
            return bb_nrf_sec_on_event(evt);
        default:
            return bb_nrf_gap_on_event(evt);
        }
    }
    if (id >= BLE_GATTC_EVT_BASE && id <= BLE_GATTC_EVT_LAST) {
        return bb_nrf_gattc_on_event(evt);
    }
    if (id >= BLE_GATTS_EVT_BASE && id <= BLE_GATTS_EVT_LAST) {
        return bb_nrf_gatts_on_event(evt);
    }
    if (id >= BLE_L2CAP_EVT_BASE && id <= BLE_L2CAP_EVT_LAST) {
        return bb_nrf_l2cap_on_event(evt);
    }
    return 0;
}

void bb_nrf_sd_poll(void)
{
    if (s_boot_log[0] != '\0') {
        (void)bb_log(1, s_boot_log);
        s_boot_log[0] = '\0';
    }
    if (!s_sd_enabled) {
        return;
    }
    soc_events_poll();
    for (;;) {
        if (!s_evt_held) {
            uint16_t len = sizeof s_evt_buf;
            if (sd_ble_evt_get((uint8_t *)s_evt_buf, &len) != NRF_SUCCESS) {
                break; /* NRF_ERROR_NOT_FOUND: drained (DATA_SIZE cannot happen: max size) */
            }
            bb_nrf_stage = 0;
        }
        if (dispatch((const ble_evt_t *)s_evt_buf) == -BB_STATUS_ENOMEM) {
            s_evt_held = true; /* retried after bb_core_poll() has made room */
            break;
        }
        s_evt_held = false;
    }
    bb_nrf_gatts_retry_replies(); /* events processed: what was refused as busy may go now */
}

/* Flow control for notifications and Write Commands. The SoftDevice queues BB_NRF_HVN_QUEUE /
 * BB_NRF_WRCMD_QUEUE per link and then refuses with NRF_ERROR_RESOURCES until
 * HVN_TX_COMPLETE / WRITE_CMD_TX_COMPLETE (ble_gatts.h, ble_gattc.h) give slots back. The
 * protocol has no "ready" event for either (MicroPython's API has none: a notification is
 * queued by the stack or fails), so the port waits here for the slot, pulling events (which
 * may be delivered to the core: bb_on_* only queue them), instead of failing a burst after
 * four PDUs per connection interval. The core's event queue being full (a held event) stops
 * the pulling: then the wait ends in EAGAIN at BB_NRF_SD_TX_WAIT_MS. */
bool bb_nrf_tx_wait(uint16_t conn, bb_nrf_txq_t q)
{
    static bool s_waiting; /* events handled inside a wait never start another */
    if (s_waiting) {
        return false;
    }
    s_waiting = true;
    uint32_t start = bb_port_millis();
    bool ok = false;
    for (;;) {
        const bb_nrf_conn_t *c = bb_nrf_conn(conn); /* again each time: the link may end */
        if (c == NULL) {
            break;
        }
        uint8_t inflight = q == BB_NRF_TXQ_HVN ? c->hvn_inflight : c->wrcmd_inflight;
        uint8_t size = q == BB_NRF_TXQ_HVN ? BB_NRF_HVN_QUEUE : BB_NRF_WRCMD_QUEUE;
        if (inflight < size) {
            ok = true;
            break;
        }
        if ((uint32_t)(bb_port_millis() - start) >= BB_NRF_SD_TX_WAIT_MS) {
            break;
        }
        bb_nrf_sd_sleep_1ms();
        bb_nrf_sd_poll();
    }
    s_waiting = false;
    return ok;
}

/* ------------------------------------------------------------------------------------------ */
/* bb_port.h: platform                                                                           */
/* ------------------------------------------------------------------------------------------ */

int bb_port_init(void)
{
    /* The core applies no configuration at boot: start from the same defaults it reports. */
    bb_config_defaults(&bb_nrf_cfg);
    int err = stack_start();
    /* boot_id: 4 bytes from the SoftDevice's RNG pool (filled by the RNG peripheral). */
    uint8_t r[4] = {0};
    if (err == 0) {
        uint8_t avail = 0;
        for (int tries = 0; tries < 1000 && avail < sizeof r; tries++) {
            (void)sd_rand_application_bytes_available_get(&avail);
        }
        (void)sd_rand_application_vector_get(r, sizeof r);
    }
    s_boot_id = (uint32_t)r[0] | ((uint32_t)r[1] << 8) | ((uint32_t)r[2] << 16) | ((uint32_t)r[3] << 24);
    if (s_boot_id == 0) {
        s_boot_id = NRF_FICR->DEVICEID[0] ^ NRF_RTC1->COUNTER;
    }
    int le = bb_nrf_lesc_init();
    if (le == 0) {
        le = bb_nrf_sec_init();
    }
    if (le != 0 && s_boot_log[0] == '\0') {
        boot_log("nrf_sd: CryptoCell unavailable, LE Secure Connections off; errno", (uint32_t)-le);
    }
    return err ? err : bb_port_config_apply(&bb_nrf_cfg);
}

const bb_port_caps_t *bb_port_caps(void)
{
    s_caps.board = BB_BOARD;
    s_caps.port = "nrf_sd";
    s_caps.central = true;
    s_caps.peripheral = true;
    s_caps.observer = true;
    s_caps.broadcaster = true;
    s_caps.l2cap = true;
    s_caps.pairing = true;
    s_caps.ext_adv = true;
    s_caps.max_connections = s_conn_count;
    s_caps.max_mtu = bb_nrf_att_mtu_max;
    s_caps.max_l2cap_mtu = BB_MAX_L2CAP_SDU;
    s_caps.holds_back_events = true; /* a refused SoftDevice event is kept and re-run after bb_core_poll */
    return &s_caps;
}

uint32_t bb_port_boot_id(void)
{
    return s_boot_id;
}

/* Nesting is counted here: sd_nvic_critical_region_enter reports "nested" through one flag per
 * call, and a single stored flag overwritten by an inner enter would keep interrupts masked
 * after the outer exit. */
void bb_port_critical_enter(void)
{
    uint8_t nested = 0;
    (void)sd_nvic_critical_region_enter(&nested);
    if (s_critical_depth++ == 0) {
        s_critical_nested = nested;
    }
}

void bb_port_critical_exit(void)
{
    if (s_critical_depth == 0) {
        return;
    }
    if (--s_critical_depth == 0) {
        (void)sd_nvic_critical_region_exit(s_critical_nested);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* bb_port.h: radio and configuration                                                            */
/* ------------------------------------------------------------------------------------------ */

int bb_port_ble_activate(bool on)
{
    if (on) {
        if (!s_sd_enabled) {
            /* Start-up failed (logged at boot): try once more, the caller sees why not. */
            int err = stack_start();
            if (err == 0) {
                err = bb_port_config_apply(&bb_nrf_cfg);
            }
            if (err) {
                return err;
            }
        }
        bb_nrf_active = true;
        return 0;
    }
    if (!bb_nrf_active) {
        return 0;
    }
    bb_nrf_active = false;
    /* Links, advertising, scans and the GATT table all go with a restart; no events follow. */
    return bb_nrf_stack_restart();
}

int bb_port_reset(void)
{
    bb_nrf_active = false;
    bb_config_defaults(&bb_nrf_cfg);
    s_have_static_addr = false;
    return bb_nrf_stack_restart();
}

static int apply_addr_mode(uint8_t mode)
{
    ble_gap_privacy_params_t p;
    memset(&p, 0, sizeof p);
    p.private_addr_cycle_s = 0; /* SoftDevice default: 15 minutes */
    p.p_device_irk = NULL;      /* the SoftDevice's own IRK */
    switch (mode) {
    case BB_ADDR_MODE_PUBLIC:   /* nRF52840 has no public address: identity is static random */
    case BB_ADDR_MODE_RANDOM:
        p.privacy_mode = BLE_GAP_PRIVACY_MODE_OFF;
        break;
    case BB_ADDR_MODE_RPA:
        p.privacy_mode = BLE_GAP_PRIVACY_MODE_DEVICE_PRIVACY;
        p.private_addr_type = BLE_GAP_ADDR_TYPE_RANDOM_PRIVATE_RESOLVABLE;
        break;
    case BB_ADDR_MODE_NRPA:
        p.privacy_mode = BLE_GAP_PRIVACY_MODE_DEVICE_PRIVACY;
        p.private_addr_type = BLE_GAP_ADDR_TYPE_RANDOM_PRIVATE_NON_RESOLVABLE;
        break;
    default:
        return -BB_STATUS_EINVAL;
    }
    return bb_nrf_err(sd_ble_gap_privacy_set(&p));
}

int bb_port_config_apply(const bb_config_t *cfg)
{
    int err;
    if (cfg != &bb_nrf_cfg) {
        bb_nrf_cfg = *cfg;
    }
    if (bb_nrf_cfg.mtu < BLE_GATT_ATT_MTU_DEFAULT) {
        bb_nrf_cfg.mtu = BLE_GATT_ATT_MTU_DEFAULT;
    }
    if (!s_sd_enabled) {
        return 0; /* kept: applied by bb_nrf_stack_restart / ble_activate when the stack starts */
    }
    ble_gap_conn_sec_mode_t name_perm;
    BLE_GAP_CONN_SEC_MODE_SET_NO_ACCESS(&name_perm); /* peers may read, not rename */
    const char *nul = memchr(bb_nrf_cfg.gap_name, 0, sizeof bb_nrf_cfg.gap_name);
    size_t name_len = nul ? (size_t)(nul - bb_nrf_cfg.gap_name) : sizeof bb_nrf_cfg.gap_name - 1;
    if (name_len > 0) { /* empty: keep the SoftDevice's default name ("nRF5x") */
        err = bb_nrf_err(sd_ble_gap_device_name_set(&name_perm, (const uint8_t *)bb_nrf_cfg.gap_name,
                                                    (uint16_t)name_len));
        if (err) {
            return err;
        }
    }
    err = bb_nrf_err(sd_ble_gap_appearance_set(bb_nrf_cfg.appearance));
    if (err) {
        return err;
    }
    if (bb_nrf_cfg.addr_mode != s_applied_addr_mode) {
        err = apply_addr_mode(bb_nrf_cfg.addr_mode);
        if (err) {
            return err;
        }
        s_applied_addr_mode = bb_nrf_cfg.addr_mode;
    }
    return 0;
}

/* The identity address (privacy on or off, ble_gap.h). Without a running SoftDevice: the
 * static address set by config, else the one the SoftDevice takes at enable, which is the
 * FICR DEVICEADDR with the two top bits set (random static, ble_gap.h "populated during the IC
 * manufacturing process"). */
int bb_port_addr_get(bb_addr_t *out)
{
    if (s_sd_enabled) {
        ble_gap_addr_t a;
        int err = bb_nrf_err(sd_ble_gap_addr_get(&a));
        if (err == 0) {
            bb_nrf_addr_from_sd(out, &a);
        }
        return err;
    }
    out->type = BB_ADDR_TYPE_RANDOM;
    if (s_have_static_addr) {
        memcpy(out->addr, s_static_addr.addr, BB_ADDR_LEN);
        return 0;
    }
    uint32_t lo = NRF_FICR->DEVICEADDR[0], hi = NRF_FICR->DEVICEADDR[1];
    out->addr[0] = (uint8_t)lo;
    out->addr[1] = (uint8_t)(lo >> 8);
    out->addr[2] = (uint8_t)(lo >> 16);
    out->addr[3] = (uint8_t)(lo >> 24);
    out->addr[4] = (uint8_t)hi;
    out->addr[5] = (uint8_t)((hi >> 8) | 0xC0u);
    return 0;
}

int bb_port_addr_set_static(const uint8_t addr[BB_ADDR_LEN])
{
    ble_gap_addr_t a;
    memset(&a, 0, sizeof a);
    a.addr_type = BLE_GAP_ADDR_TYPE_RANDOM_STATIC;
    memcpy(a.addr, addr, BB_ADDR_LEN);
    int err = s_sd_enabled ? bb_nrf_err(sd_ble_gap_addr_set(&a)) : 0; /* else set at enable */
    if (err == 0) {
        s_static_addr = a;
        s_have_static_addr = true;
    }
    return err;
}
