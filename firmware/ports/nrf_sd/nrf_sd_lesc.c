/*
 * nrf_sd port: P-256 for LE Secure Connections, on the nRF52840's CryptoCell CC310.
 *
 * Uses the CC310 runtime (libnrf_cc310, "no-interrupts" build) that the Adafruit nRF52 core
 * ships in its Adafruit_nRFCrypto library, called directly so every work buffer is static (the
 * library's C++ wrappers allocate them on the heap). CC310 works big-endian with a 0x04
 * "uncompressed" prefix; SMP carries X and Y little-endian, hence the reversals.
 *
 * Build switch: BB_NRF_SD_NO_LESC leaves CryptoCell out; pairing then offers legacy only.
 */
#include <string.h>

#include "bb_nrf_sd.h"

#ifndef BB_NRF_SD_NO_LESC

#include "nrf.h"
#include "nrf_cc310/include/crys_ecpki_build.h"
#include "nrf_cc310/include/crys_ecpki_dh.h"
#include "nrf_cc310/include/crys_ecpki_domain.h"
#include "nrf_cc310/include/crys_ecpki_kg.h"
#include "nrf_cc310/include/crys_rnd.h"
#include "nrf_cc310/include/sns_silib.h"

static bool s_ready;
static CRYS_RND_State_t s_rnd;
static CRYS_RND_WorkBuff_t s_rnd_work;
static const CRYS_ECPKI_Domain_t *s_domain;
static CRYS_ECPKI_UserPrivKey_t s_priv;
static CRYS_ECPKI_UserPublKey_t s_pub;
static union {
    CRYS_ECPKI_KG_TempData_t kg;
    CRYS_ECDH_TempData_t dh;
    CRYS_ECPKI_BUILD_TempData_t build;
} s_tmp;
static CRYS_ECPKI_UserPublKey_t s_peer;

static void reverse_into(uint8_t *dst, const uint8_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dst[i] = src[n - 1 - i];
    }
}

int bb_nrf_lesc_init(void)
{
    NRF_CRYPTOCELL->ENABLE = 1; /* power the CryptoCell; it stays on for the session */
    if (SaSi_LibInit() != SA_SILIB_RET_OK) {
        return -BB_STATUS_EIO;
    }
    if (CRYS_RndInit(&s_rnd, &s_rnd_work) != CRYS_OK) {
        return -BB_STATUS_EIO;
    }
    s_domain = CRYS_ECPKI_GetEcDomain(CRYS_ECPKI_DomainID_secp256r1);
    if (!s_domain) {
        return -BB_STATUS_EIO;
    }
    /* One key pair per boot, as the SoftDevice examples do: SMP allows reuse across pairings. */
    if (CRYS_ECPKI_GenKeyPair(&s_rnd, CRYS_RND_GenerateVector, s_domain, &s_priv, &s_pub, &s_tmp.kg, NULL) != CRYS_OK) {
        return -BB_STATUS_EIO;
    }
    s_ready = true;
    return 0;
}

int bb_nrf_lesc_public_key(uint8_t out_le[64])
{
    if (!s_ready) {
        return -BB_STATUS_EOPNOTSUPP;
    }
    uint8_t be[65];
    uint32_t len = sizeof be;
    if (CRYS_ECPKI_ExportPublKey(&s_pub, CRYS_EC_PointUncompressed, be, &len) != CRYS_OK || len != 65) {
        return -BB_STATUS_EIO;
    }
    reverse_into(out_le, be + 1, 32);
    reverse_into(out_le + 32, be + 33, 32);
    return 0;
}

int bb_nrf_lesc_dhkey(const uint8_t peer_pk_le[64], uint8_t out_dhkey_le[32])
{
    if (!s_ready) {
        return -BB_STATUS_EOPNOTSUPP;
    }
    uint8_t be[65];
    be[0] = CRYS_EC_PointUncompressed;
    reverse_into(be + 1, peer_pk_le, 32);
    reverse_into(be + 33, peer_pk_le + 32, 32);
    /* Full check: a point off the curve is the invalid-curve attack on LESC. */
    if (CRYS_ECPKI_BuildPublKeyFullCheck(s_domain, be, sizeof be, &s_peer, &s_tmp.build) != CRYS_OK) {
        return -BB_STATUS_EINVAL;
    }
    uint8_t secret[32];
    uint32_t len = sizeof secret;
    if (CRYS_ECDH_SVDP_DH(&s_peer, &s_priv, secret, &len, &s_tmp.dh) != CRYS_OK || len != 32) {
        return -BB_STATUS_EIO;
    }
    reverse_into(out_dhkey_le, secret, 32);
    return 0;
}

#else /* BB_NRF_SD_NO_LESC */

int bb_nrf_lesc_init(void)
{
    return -BB_STATUS_EOPNOTSUPP;
}

int bb_nrf_lesc_public_key(uint8_t out_le[64])
{
    (void)out_le;
    return -BB_STATUS_EOPNOTSUPP;
}

int bb_nrf_lesc_dhkey(const uint8_t peer_pk_le[64], uint8_t out_dhkey_le[32])
{
    (void)peer_pk_le;
    (void)out_dhkey_le;
    return -BB_STATUS_EOPNOTSUPP;
}

#endif /* BB_NRF_SD_NO_LESC */
