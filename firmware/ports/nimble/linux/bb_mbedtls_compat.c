/*
 * NimBLE's LE Secure Connections key generation (ble_sm_alg.c) calls mbedtls_ecp_export, which
 * mbedTLS has only from 3.0 on; Debian 12's libmbedtls-dev is 2.28. With 2.x the key pair's
 * fields are public, so the export is three copies. Nothing is compiled with mbedTLS 3.
 */
#include <mbedtls/ecp.h>
#include <mbedtls/version.h>

#if MBEDTLS_VERSION_NUMBER < 0x03000000
int mbedtls_ecp_export(const mbedtls_ecp_keypair *key, mbedtls_ecp_group *grp, mbedtls_mpi *d,
                       mbedtls_ecp_point *q);

int mbedtls_ecp_export(const mbedtls_ecp_keypair *key, mbedtls_ecp_group *grp, mbedtls_mpi *d,
                       mbedtls_ecp_point *q)
{
    int rc = mbedtls_ecp_group_copy(grp, &key->grp);
    if (rc == 0) {
        rc = mbedtls_mpi_copy(d, &key->d);
    }
    if (rc == 0) {
        rc = mbedtls_ecp_copy(q, &key->Q);
    }
    return rc;
}
#endif
