/* tls_server.c - server credentials by generation, and client-certificate
 * verification. Everything mutable sits behind one mutex: the HTTP thread reads
 * (handshakes, verification), the main thread swaps on SIGHUP. */
#include "tls_server.h"

#include <gnutls/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tp_secret.h"
#include "tp_mem.h"
#include "validate.h"

#define MAX_CHAIN 16

/* One certificate chain + key, as handed to GnuTLS for a handshake. */
typedef struct creds_set {
  gnutls_pcert_st pcerts[MAX_CHAIN];
  unsigned n;
  gnutls_privkey_t key;
  uint64_t gen;
  unsigned refs; /* once retired: connections still open that were open at the swap */
  struct creds_set *next;
  char leaf[200]; /* the leaf's subject, for logs */
} creds_set;

struct tp_tls_server {
  pthread_mutex_t mu;
  creds_set *current;
  creds_set *retired;
  unsigned live; /* connections open */
  gnutls_x509_trust_list_t client_trust; /* NULL = no client certificates */
  uint64_t trust_gen;
  char *client_ca_pem; /* for MHD, read once */
  tp_tls_files files;  /* owned copies */
  const tp_log *log;
};

/* GnuTLS's retrieve function has no user pointer: the one server lives here. */
static tp_tls_server *g_server;
static pthread_mutex_t g_server_mu = PTHREAD_MUTEX_INITIALIZER;

static void creds_free(creds_set *c) {
  if (c == NULL)
    return;
  for (unsigned i = 0; i < c->n; i++)
    gnutls_pcert_deinit(&c->pcerts[i]);
  if (c->key != NULL)
    gnutls_privkey_deinit(c->key);
  free(c);
}

static void leaf_subject(const gnutls_pcert_st *leaf, char *out, size_t len) {
  gnutls_x509_crt_t crt;
  gnutls_datum_t dn = {0};
  snprintf(out, len, "?");
  if (gnutls_x509_crt_init(&crt) < 0)
    return;
  if (gnutls_x509_crt_import(crt, &leaf->cert, GNUTLS_X509_FMT_DER) >= 0 &&
      gnutls_x509_crt_get_dn3(crt, &dn, 0) >= 0) {
    snprintf(out, len, "%s", (const char *)dn.data);
    out[strcspn(out, "\"\r\n")] = '\0'; /* it goes into a log field */
  }
  gnutls_free(dn.data);
  gnutls_x509_crt_deinit(crt);
}

/* The key must belong to the certificate: GnuTLS's own credentials check that. */
static int check_pair(const gnutls_datum_t *cert, const gnutls_datum_t *key) {
  gnutls_certificate_credentials_t check;
  int ret = gnutls_certificate_allocate_credentials(&check);
  if (ret < 0)
    return ret;
  ret = gnutls_certificate_set_x509_key_mem2(check, cert, key, GNUTLS_X509_FMT_PEM, NULL, 0);
  gnutls_certificate_free_credentials(check);
  return ret;
}

static tp_err load_creds(const tp_tls_files *f, creds_set **out, char *err, size_t errlen) {
  gnutls_datum_t cert = {0}, key = {0};
  creds_set *c = tp_xcalloc(1, sizeof(*c));
  const char *file = f->cert_file;
  tp_err rc = TP_E_TLS;
  int ret = gnutls_load_file(f->cert_file, &cert);
  if (ret >= 0) {
    file = f->key_file;
    ret = gnutls_load_file(f->key_file, &key);
  }
  if (ret < 0)
    goto fail;
  file = f->cert_file;
  c->n = MAX_CHAIN;
  ret = gnutls_pcert_list_import_x509_raw(c->pcerts, &c->n, &cert, GNUTLS_X509_FMT_PEM,
                                          GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED);
  if (ret < 0) {
    c->n = 0;
    goto fail;
  }
  file = f->key_file;
  if ((ret = gnutls_privkey_init(&c->key)) < 0 ||
      (ret = gnutls_privkey_import_x509_raw(c->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0)
    goto fail;
  file = f->cert_file;
  if ((ret = check_pair(&cert, &key)) < 0)
    goto fail;
  leaf_subject(&c->pcerts[0], c->leaf, sizeof(c->leaf));
  *out = c;
  c = NULL;
  rc = TP_E_OK;
fail:
  if (rc != TP_E_OK)
    snprintf(err, errlen, "%s: %s", file, gnutls_strerror(ret));
  gnutls_free(cert.data);
  if (key.data != NULL) {
    gnutls_memset(key.data, 0, key.size);
    gnutls_free(key.data);
  }
  creds_free(c);
  return rc;
}

static tp_err load_trust(const tp_tls_files *f, gnutls_x509_trust_list_t *out, char *err,
                         size_t errlen) {
  gnutls_x509_trust_list_t tl;
  *out = NULL;
  if (f->client_ca_file == NULL)
    return TP_E_OK;
  int ret = gnutls_x509_trust_list_init(&tl, 0);
  if (ret < 0) {
    snprintf(err, errlen, "trust list: %s", gnutls_strerror(ret));
    return TP_E_TLS;
  }
  ret = gnutls_x509_trust_list_add_trust_file(tl, f->client_ca_file, NULL, GNUTLS_X509_FMT_PEM, 0,
                                              0);
  if (ret <= 0) {
    snprintf(err, errlen, "%s: %s", f->client_ca_file,
             ret == 0 ? "no CA certificate in the file" : gnutls_strerror(ret));
    goto fail;
  }
  if (f->client_crl_file != NULL) {
    /* A CRL that no configured CA signed would silently revoke nothing: refuse it. */
    ret = gnutls_x509_trust_list_add_trust_file(tl, NULL, f->client_crl_file, GNUTLS_X509_FMT_PEM,
                                                GNUTLS_TL_VERIFY_CRL | GNUTLS_TL_FAIL_ON_INVALID_CRL,
                                                0);
    if (ret < 0) {
      snprintf(err, errlen, "%s: %s", f->client_crl_file, gnutls_strerror(ret));
      goto fail;
    }
  }
  *out = tl;
  return TP_E_OK;
fail:
  gnutls_x509_trust_list_deinit(tl, 1);
  return TP_E_TLS;
}

static void warn_key_mode(const tp_tls_server *tls) {
  char why[128];
  if (tp_secret_file_too_open(tls->files.key_file, why, sizeof(why)))
    tp_log_warn(tls->log, "TLS key file is not private",
                "file=\"%s\" problem=\"%s\" fix=\"chmod 600\"", tls->files.key_file, why);
}

tp_err tp_tls_server_new(const tp_tls_files *files, const tp_log *log, tp_tls_server **out,
                         char *err, size_t errlen) {
  tp_tls_server *tls = tp_xcalloc(1, sizeof(*tls));
  gnutls_datum_t pem = {0};
  *out = NULL;
  tls->log = log;
  tls->files.cert_file = tp_xstrdup(files->cert_file);
  tls->files.key_file = tp_xstrdup(files->key_file);
  tls->files.client_ca_file = tp_xstrdup_or_null(files->client_ca_file);
  tls->files.client_crl_file = tp_xstrdup_or_null(files->client_crl_file);
  tp_err rc = TP_E_NOMEM;
  if (pthread_mutex_init(&tls->mu, NULL) != 0) {
    snprintf(err, errlen, "cannot create a mutex");
    free((char *)tls->files.cert_file);
    free((char *)tls->files.key_file);
    free((char *)tls->files.client_ca_file);
    free((char *)tls->files.client_crl_file);
    free(tls);
    return rc;
  }
  rc = load_creds(&tls->files, &tls->current, err, errlen);
  if (rc == TP_E_OK)
    rc = load_trust(&tls->files, &tls->client_trust, err, errlen);
  if (rc == TP_E_OK && tls->files.client_ca_file != NULL) {
    int ret = gnutls_load_file(tls->files.client_ca_file, &pem);
    if (ret < 0) {
      snprintf(err, errlen, "%s: %s", tls->files.client_ca_file, gnutls_strerror(ret));
      rc = TP_E_TLS;
    } else {
      tls->client_ca_pem = tp_xstrndup((const char *)pem.data, pem.size);
      gnutls_free(pem.data);
    }
  }
  pthread_mutex_lock(&g_server_mu);
  if (rc == TP_E_OK && g_server != NULL) {
    snprintf(err, errlen, "an HTTPS server is already running in this process");
    rc = TP_E_INVAL;
  }
  if (rc == TP_E_OK)
    g_server = tls;
  pthread_mutex_unlock(&g_server_mu);
  if (rc != TP_E_OK) {
    tp_tls_server_free(tls);
    return rc;
  }
  warn_key_mode(tls);
  *out = tls;
  return TP_E_OK;
}

void tp_tls_server_free(tp_tls_server *tls) {
  if (tls == NULL)
    return;
  pthread_mutex_lock(&g_server_mu);
  if (g_server == tls)
    g_server = NULL;
  pthread_mutex_unlock(&g_server_mu);
  creds_free(tls->current);
  while (tls->retired != NULL) {
    creds_set *next = tls->retired->next;
    creds_free(tls->retired);
    tls->retired = next;
  }
  if (tls->client_trust != NULL)
    gnutls_x509_trust_list_deinit(tls->client_trust, 1);
  free(tls->client_ca_pem);
  free((char *)tls->files.cert_file);
  free((char *)tls->files.key_file);
  free((char *)tls->files.client_ca_file);
  free((char *)tls->files.client_crl_file);
  pthread_mutex_destroy(&tls->mu);
  free(tls);
}

tp_err tp_tls_server_reload(tp_tls_server *tls, char *err, size_t errlen) {
  creds_set *fresh = NULL;
  gnutls_x509_trust_list_t trust = NULL, old_trust;
  tp_err rc = load_creds(&tls->files, &fresh, err, errlen);
  if (rc == TP_E_OK)
    rc = load_trust(&tls->files, &trust, err, errlen);
  if (rc != TP_E_OK) {
    creds_free(fresh);
    return rc;
  }
  warn_key_mode(tls);
  pthread_mutex_lock(&tls->mu);
  creds_set *old = tls->current;
  fresh->gen = old->gen + 1;
  tls->current = fresh;
  if (tls->live == 0) {
    creds_free(old);
  } else {
    old->refs = tls->live;
    old->next = tls->retired;
    tls->retired = old;
  }
  old_trust = tls->client_trust;
  tls->client_trust = trust;
  tls->trust_gen++;
  pthread_mutex_unlock(&tls->mu);
  /* Verification holds the lock for its whole run: nothing uses the old list now. */
  if (old_trust != NULL)
    gnutls_x509_trust_list_deinit(old_trust, 1);
  return TP_E_OK;
}

int tp_tls_server_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                           const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                           gnutls_pcert_st **pcert, unsigned int *pcert_length,
                           gnutls_privkey_t *privkey) {
  (void)session;
  (void)req_ca_rdn;
  (void)nreqs;
  (void)pk_algos;
  (void)pk_algos_length;
  tp_tls_server *tls = g_server; /* set before the daemon starts, cleared after it stops */
  if (tls == NULL)
    return -1;
  pthread_mutex_lock(&tls->mu);
  *pcert = tls->current->pcerts;
  *pcert_length = tls->current->n;
  *privkey = tls->current->key;
  pthread_mutex_unlock(&tls->mu);
  return 0;
}

const char *tp_tls_server_client_ca_pem(const tp_tls_server *tls) { return tls->client_ca_pem; }

void tp_tls_server_describe(tp_tls_server *tls, char *out, size_t len) {
  pthread_mutex_lock(&tls->mu);
  snprintf(out, len, "%s", tls->current->leaf);
  pthread_mutex_unlock(&tls->mu);
}

uint64_t tp_tls_server_conn_opened(tp_tls_server *tls) {
  pthread_mutex_lock(&tls->mu);
  tls->live++;
  uint64_t epoch = tls->current->gen;
  pthread_mutex_unlock(&tls->mu);
  return epoch;
}

/* A set retired at generation g was in force for every connection open at the swap,
 * i.e. every one with epoch <= g: those are the ones its refs count. */
void tp_tls_server_conn_closed(tp_tls_server *tls, uint64_t epoch) {
  pthread_mutex_lock(&tls->mu);
  tls->live--;
  creds_set **link = &tls->retired;
  while (*link != NULL) {
    creds_set *c = *link;
    if (c->gen >= epoch && --c->refs == 0) {
      *link = c->next;
      creds_free(c);
      continue;
    }
    link = &c->next;
  }
  pthread_mutex_unlock(&tls->mu);
}

uint64_t tp_tls_server_trust_generation(tp_tls_server *tls) {
  pthread_mutex_lock(&tls->mu);
  uint64_t gen = tls->trust_gen;
  pthread_mutex_unlock(&tls->mu);
  return gen;
}

/* CN, else the first DNS SAN; it must be an agent id as the wire defines it. */
static tp_err leaf_identity(gnutls_x509_crt_t leaf, char *identity, size_t identity_len,
                            char *why, size_t why_len) {
  char buf[256], reason[160];
  size_t size = sizeof(buf);
  int ret = gnutls_x509_crt_get_dn_by_oid(leaf, GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf, &size);
  for (unsigned seq = 0; ret < 0 && seq < 64; seq++) {
    size = sizeof(buf);
    ret = gnutls_x509_crt_get_subject_alt_name(leaf, seq, buf, &size, NULL);
    if (ret == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
      break;
    ret = ret == GNUTLS_SAN_DNSNAME ? 0 : -1;
  }
  if (ret < 0) {
    snprintf(why, why_len, "client certificate has neither a CN nor a DNS name");
    return TP_E_TLS;
  }
  /* An embedded NUL would make the name we check differ from the one signed. */
  if (strlen(buf) != size || tp_wire_check_agent_id(buf, reason, sizeof(reason)) != TP_E_OK) {
    snprintf(why, why_len, "client certificate name is not a valid agent id");
    return TP_E_TLS;
  }
  snprintf(identity, identity_len, "%s", buf);
  return TP_E_OK;
}

static tp_err verify_chain(gnutls_x509_trust_list_t trust, gnutls_x509_crt_t *chain, unsigned n,
                           char *why, size_t why_len) {
  gnutls_typed_vdata_st purpose = {.type = GNUTLS_DT_KEY_PURPOSE_OID,
                                   .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT};
  unsigned status = 0;
  int ret = gnutls_x509_trust_list_verify_crt2(trust, chain, n, &purpose, 1, 0, &status, NULL);
  if (ret < 0) {
    snprintf(why, why_len, "client certificate not verified: %s", gnutls_strerror(ret));
    return TP_E_TLS;
  }
  if (status != 0) {
    gnutls_datum_t text = {0};
    if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) < 0)
      text.data = NULL;
    snprintf(why, why_len, "client certificate not trusted: %s",
             text.data ? (const char *)text.data : "verification failed");
    why[strcspn(why, "\"\r\n")] = '\0';
    gnutls_free(text.data);
    return TP_E_TLS;
  }
  return TP_E_OK;
}

tp_err tp_tls_server_peer_identity(tp_tls_server *tls, gnutls_session_t session, char *identity,
                                   size_t identity_len, char *why, size_t why_len) {
  unsigned n = 0, imported = 0;
  gnutls_x509_crt_t chain[MAX_CHAIN];
  const gnutls_datum_t *der = gnutls_certificate_get_peers(session, &n);
  if (der == NULL || n == 0)
    return TP_E_NOTFOUND;
  if (n > MAX_CHAIN)
    n = MAX_CHAIN;
  tp_err rc = TP_E_TLS;
  snprintf(why, why_len, "client certificate cannot be parsed");
  for (; imported < n; imported++) {
    if (gnutls_x509_crt_init(&chain[imported]) < 0)
      goto out;
    if (gnutls_x509_crt_import(chain[imported], &der[imported], GNUTLS_X509_FMT_DER) < 0) {
      imported++;
      goto out;
    }
  }
  pthread_mutex_lock(&tls->mu);
  rc = tls->client_trust == NULL ? TP_E_NOTFOUND
                                 : verify_chain(tls->client_trust, chain, n, why, why_len);
  pthread_mutex_unlock(&tls->mu);
  if (rc == TP_E_OK)
    rc = leaf_identity(chain[0], identity, identity_len, why, why_len);
out:
  for (unsigned i = 0; i < imported; i++)
    gnutls_x509_crt_deinit(chain[i]);
  return rc;
}
