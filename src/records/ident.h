/* ident.h — what a record is identified by, for the writers of records (the
 * server, `qcare ask` and `qcare chat`): session ids made for turns that
 * came without one, the model's content hash, and the default place of the
 * store. Internal to the qcare binary, like records.h. */
#ifndef QC_RECORDS_IDENT_H
#define QC_RECORDS_IDENT_H

#include "qcare.h"

#include <stddef.h>

#define QC_REC_SESSION_NEW_LEN 32 /* hex digits of a made session id: 128 random bits */
#define QC_REC_HASH_LEN 64        /* hex digits of a model hash (SHA-256) */

/* A new session id: 128 bits from the kernel's random source (getrandom),
 * as 32 lower-case hex digits and a NUL. 0, or -1 when no random bytes
 * could be had (then out is ""). Thread-safe. */
int qc_rec_session_new(char out[QC_REC_SESSION_NEW_LEN + 1]);

/* The model's content hash: SHA-256 over what qc_model_identity gives (its
 * configuration and weights headers), as 64 hex digits and a NUL. The same
 * files give the same hash, whatever --dtype they are loaded as (the
 * record's weight type says that). 0, or -1 (out "") on failure. */
int qc_rec_model_hash(const qc_model_t *m, char out[QC_REC_HASH_LEN + 1]);

/* The default store: $QCARE_DATA/records.db, where $QCARE_DATA defaults to
 * ~/.local/share/qcare; the folder (and any missing parent) is created
 * with mode 0700. The path into out (size bytes). QC_OK, or QC_ERR_IO /
 * QC_ERR_ARG with the reason in err. */
qc_status qc_rec_default_path(char *out, size_t size, char *err, size_t err_size);

#endif
