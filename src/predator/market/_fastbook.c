/* predator.market._fastbook: the compiled fast path of the Binance book check.
 *
 * scan_block() reads one block of whole capture lines ("<receive_ns> <json>\n") straight
 * into the compact form the book check consumes (see _binance_depth.scan_check_block,
 * the pure-Python twin that gives the same result). It accepts only the plain shapes
 * Binance writes (compact JSON, no escapes, exact decimals at the learnt precision) and
 * returns None for anything else, so the caller re-reads that block with the msgspec
 * path, which names the bad line. update_side() is OrderBook.update_flat for one side.
 * Prices and sizes are exact 64-bit ints: no float anywhere.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define BAIL (-1)
#define MAX_ACC ((long long)(LLONG_MAX / 10 - 9))

typedef struct {
    const char *p;
    const char *end;
} Cursor;

/* Growable int64 buffer (levels of one side, tickers of one block). */
typedef struct {
    long long *v;
    Py_ssize_t n;
    Py_ssize_t cap;
} Buffer;

static int buffer_push(Buffer *b, long long x) {
    if (b->n == b->cap) {
        Py_ssize_t cap = b->cap ? b->cap * 2 : 1024;
        long long *v = PyMem_Realloc(b->v, (size_t)cap * sizeof(long long));
        if (v == NULL) {
            PyErr_NoMemory();
            return -2;
        }
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = x;
    return 0;
}

static PyObject *buffer_list(const Buffer *b, Py_ssize_t from, Py_ssize_t to) {
    PyObject *list = PyList_New(to - from);
    if (list == NULL) return NULL;
    for (Py_ssize_t i = from; i < to; i++) {
        PyObject *x = PyLong_FromLongLong(b->v[i]);
        if (x == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i - from, x);
    }
    return list;
}

/* A JSON non-negative int without leading zeros that fits an int64. */
static int read_uint(Cursor *c, long long *out) {
    const char *p = c->p;
    const char *start = p;
    unsigned long long value = 0;
    while (p < c->end && *p >= '0' && *p <= '9' && p - start < 19) {
        value = value * 10 + (unsigned long long)(*p - '0');
        p++;
    }
    Py_ssize_t digits = p - start;
    if (digits == 0 || (digits > 1 && *start == '0') || value > (unsigned long long)LLONG_MAX)
        return BAIL;
    if (p < c->end && *p >= '0' && *p <= '9') return BAIL;  /* 20 digits or more */
    c->p = p;
    *out = (long long)value;
    return 0;
}

/* A JSON string with no escape, control or non-ASCII byte; returns its body. */
static int read_string(Cursor *c, const char **body, Py_ssize_t *len) {
    const char *p = c->p;
    if (p >= c->end || *p != '"') return BAIL;
    p++;
    const char *start = p;
    while (p < c->end && *p != '"') {
        unsigned char ch = (unsigned char)*p;
        if (ch == '\\' || ch < 0x20 || ch >= 0x80) return BAIL;
        p++;
    }
    if (p >= c->end) return BAIL;
    *body = start;
    *len = p - start;
    c->p = p + 1;
    return 0;
}

/* "61837.63000000" as an int of 10**-decimals units (to_units): digits, an optional
 * fraction, exact (dropped fraction digits must be zeros). */
static int decimal_units(const char *s, Py_ssize_t n, int decimals, long long *out) {
    if (decimals < 0) return BAIL;
    Py_ssize_t i = 0;
    long long value = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (value > MAX_ACC) return BAIL;
        value = value * 10 + (s[i] - '0');
        i++;
    }
    if (i == 0) return BAIL;
    int taken = 0;
    if (i < n) {
        if (s[i] != '.') return BAIL;
        i++;
        for (; i < n; i++) {
            char ch = s[i];
            if (ch < '0' || ch > '9') return BAIL;
            if (taken < decimals) {
                if (value > MAX_ACC) return BAIL;
                value = value * 10 + (ch - '0');
                taken++;
            } else if (ch != '0') {
                return BAIL;  /* more decimals than the precision: a data error */
            }
        }
    }
    for (; taken < decimals; taken++) {
        if (value > MAX_ACC) return BAIL;
        value *= 10;
    }
    *out = value;
    return 0;
}

/* [["price","size"],...] appended flat to out. */
static int read_levels(Cursor *c, int price_dec, int size_dec, Buffer *out) {
    const char *body;
    Py_ssize_t len;
    long long value;
    int rc;
    if (c->p >= c->end || *c->p != '[') return BAIL;
    c->p++;
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        return 0;
    }
    for (;;) {
        if (c->p >= c->end || *c->p != '[') return BAIL;
        c->p++;
        if (read_string(c, &body, &len)) return BAIL;
        if (decimal_units(body, len, price_dec, &value)) return BAIL;
        if ((rc = buffer_push(out, value))) return rc;
        if (c->p >= c->end || *c->p != ',') return BAIL;
        c->p++;
        if (read_string(c, &body, &len)) return BAIL;
        if (decimal_units(body, len, size_dec, &value)) return BAIL;
        if ((rc = buffer_push(out, value))) return rc;
        if (c->p + 1 >= c->end || c->p[0] != ']') return BAIL;
        c->p++;
        if (*c->p == ']') {
            c->p++;
            return 0;
        }
        if (*c->p != ',') return BAIL;
        c->p++;
    }
}

/* Skip a scalar value of a key the check does not read (string, int, bool, null). */
static int skip_scalar(Cursor *c) {
    const char *p = c->p;
    if (p >= c->end) return BAIL;
    if (*p == '"') {
        const char *body;
        Py_ssize_t len;
        return read_string(c, &body, &len);
    }
    if (*p == '-') p++;
    if (p < c->end && *p >= '0' && *p <= '9') {
        c->p = p;
        long long ignored;
        return read_uint(c, &ignored);
    }
    static const char *const words[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);
        if ((size_t)(c->end - p) >= n && memcmp(p, words[i], n) == 0) {
            c->p = p + n;
            return 0;
        }
    }
    return BAIL;
}

static int key_is(const char *key, Py_ssize_t len, const char *name) {
    return (size_t)len == strlen(name) && memcmp(key, name, (size_t)len) == 0;
}

/* Fields of a stream message (the "data" object). */
enum { F_E = 1, F_EV = 2, F_S = 4, F_UU = 8, F_U = 16, F_PU = 32, F_LB = 64, F_LA = 128,
       F_B = 256, F_A = 512, F_T = 1024, F_TT = 2048, F_BB = 4096, F_AA = 8192 };
enum { KIND_NONE, KIND_DIFF, KIND_TICKER, KIND_TRADE };

typedef struct {
    int seen;
    int kind;      /* from "e" when present */
    long long U, u, pu, t;
    const char *s;
    Py_ssize_t s_len;
    const char *b, *B, *a, *A;   /* ticker strings */
    Py_ssize_t b_len, B_len, a_len, A_len;
    Py_ssize_t bids_from, bids_to, asks_from, asks_to;  /* diff levels in the buffer */
} Message;

static int mark(Message *m, int flag) {
    if (m->seen & flag) return BAIL;  /* a duplicate key: let msgspec decide */
    m->seen |= flag;
    return 0;
}

static int read_message(Cursor *c, int price_dec, int size_dec, Buffer *levels, Message *m) {
    const char *key;
    Py_ssize_t klen;
    int rc;
    memset(m, 0, sizeof(*m));
    m->U = m->u = m->pu = m->t = -1;
    if (c->p >= c->end || *c->p != '{') return BAIL;
    c->p++;
    if (c->p < c->end && *c->p == '}') return BAIL;
    for (;;) {
        if (read_string(c, &key, &klen)) return BAIL;
        if (c->p >= c->end || *c->p != ':') return BAIL;
        c->p++;
        if (klen == 1) {
            switch (key[0]) {
            case 'e': {
                const char *v;
                Py_ssize_t n;
                if (mark(m, F_EV) || read_string(c, &v, &n)) return BAIL;
                if (key_is(v, n, "depthUpdate")) m->kind = KIND_DIFF;
                else if (key_is(v, n, "bookTicker")) m->kind = KIND_TICKER;
                else if (key_is(v, n, "trade")) m->kind = KIND_TRADE;
                else return BAIL;
                break;
            }
            case 'E': {
                long long ignored;
                if (mark(m, F_E) || read_uint(c, &ignored)) return BAIL;
                break;
            }
            case 'T': {
                long long ignored;
                if (mark(m, F_TT) || read_uint(c, &ignored)) return BAIL;
                break;
            }
            case 's':
                if (mark(m, F_S) || read_string(c, &m->s, &m->s_len)) return BAIL;
                break;
            case 'U':
                if (mark(m, F_UU) || read_uint(c, &m->U)) return BAIL;
                break;
            case 'u':
                if (mark(m, F_U) || read_uint(c, &m->u)) return BAIL;
                break;
            case 't':
                if (mark(m, F_T) || read_uint(c, &m->t)) return BAIL;
                break;
            case 'B':
                if (mark(m, F_BB) || read_string(c, &m->B, &m->B_len)) return BAIL;
                break;
            case 'A':
                if (mark(m, F_AA) || read_string(c, &m->A, &m->A_len)) return BAIL;
                break;
            case 'b':
            case 'a': {
                int is_bid = key[0] == 'b';
                if (c->p < c->end && *c->p == '[') {
                    if (mark(m, is_bid ? F_LB : F_LA)) return BAIL;
                    Py_ssize_t from = levels->n;
                    if ((rc = read_levels(c, price_dec, size_dec, levels))) return rc;
                    if (is_bid) {
                        m->bids_from = from;
                        m->bids_to = levels->n;
                    } else {
                        m->asks_from = from;
                        m->asks_to = levels->n;
                    }
                } else {
                    if (mark(m, is_bid ? F_B : F_A)) return BAIL;
                    if (read_string(c, is_bid ? &m->b : &m->a, is_bid ? &m->b_len : &m->a_len))
                        return BAIL;
                }
                break;
            }
            default:
                if (skip_scalar(c)) return BAIL;
            }
        } else if (key_is(key, klen, "pu")) {
            if (mark(m, F_PU) || read_uint(c, &m->pu)) return BAIL;
        } else if (skip_scalar(c)) {
            return BAIL;
        }
        if (c->p >= c->end) return BAIL;
        if (*c->p == '}') {
            c->p++;
            break;
        }
        if (*c->p != ',') return BAIL;
        c->p++;
    }
    /* What the message is; anything ambiguous goes to msgspec. */
    int kind = m->kind;
    if (kind == KIND_NONE) kind = (m->seen & F_UU) ? KIND_DIFF : (m->seen & F_T) ? KIND_TRADE
                                                                                 : KIND_TICKER;
    int seen = m->seen;
    if (kind == KIND_DIFF) {
        if ((seen & (F_UU | F_U | F_LB | F_LA)) != (F_UU | F_U | F_LB | F_LA)) return BAIL;
        if (seen & (F_T | F_B | F_A | F_BB | F_AA)) return BAIL;
    } else if (kind == KIND_TICKER) {
        if ((seen & (F_U | F_B | F_A | F_BB | F_AA)) != (F_U | F_B | F_A | F_BB | F_AA)) return BAIL;
        if (seen & (F_UU | F_T | F_LB | F_LA | F_PU)) return BAIL;
        if (m->B_len == 0 || m->A_len == 0) return BAIL;
    } else {
        if (!(seen & F_T) || (seen & (F_UU | F_LB | F_LA))) return BAIL;
    }
    m->kind = kind;
    return 0;
}

/* Per-block output under construction. */
typedef struct {
    PyObject *records;
    PyObject *tickers;
    PyObject *ticker_ids;
    long long last_ticker;
    Py_ssize_t trades;
    Py_ssize_t out_of_order;
    int have_first_diff;
    long long first_pu;
    PyObject *first_symbol;
} Block;

static int add_record(Block *blk, int kind, Py_ssize_t index, long long ts, long long U,
                      long long u, long long pu, Buffer *levels, Py_ssize_t bf, Py_ssize_t bt,
                      Py_ssize_t af, Py_ssize_t at) {
    PyObject *bids = buffer_list(levels, bf, bt);
    PyObject *asks = bids ? buffer_list(levels, af, at) : NULL;
    if (asks == NULL) {
        Py_XDECREF(bids);
        return -2;
    }
    PyObject *record = Py_BuildValue("(inLLLLNNn)", kind, index, ts, U, u, pu, bids, asks,
                                     PyList_GET_SIZE(blk->tickers));
    if (record == NULL) return -2;
    int rc = PyList_Append(blk->records, record);
    Py_DECREF(record);
    return rc ? -2 : 0;
}

/* One line: "<ts> <json>" (the newline excluded). */
static int read_line(Cursor *c, Py_ssize_t index, int price_dec, int size_dec, Buffer *levels,
                     Block *blk) {
    long long ts;
    int rc;
    if (read_uint(c, &ts)) return BAIL;
    if (c->p >= c->end || *c->p != ' ') return BAIL;
    c->p++;
    if (c->p >= c->end || *c->p != '{') return BAIL;
    c->p++;
    int have_data = 0, have_id = 0, have_bids = 0, have_asks = 0;
    long long snapshot_id = -1;
    Py_ssize_t bf = 0, bt = 0, af = 0, at = 0;
    Message m;
    const char *key;
    Py_ssize_t klen;
    for (;;) {
        if (read_string(c, &key, &klen)) return BAIL;
        if (c->p >= c->end || *c->p != ':') return BAIL;
        c->p++;
        if (key_is(key, klen, "data")) {
            if (have_data) return BAIL;
            have_data = 1;
            if ((rc = read_message(c, price_dec, size_dec, levels, &m))) return rc;
        } else if (key_is(key, klen, "lastUpdateId")) {
            if (have_id || read_uint(c, &snapshot_id)) return BAIL;
            have_id = 1;
        } else if (key_is(key, klen, "bids") || key_is(key, klen, "asks")) {
            int is_bids = key[0] == 'b';
            if (is_bids ? have_bids : have_asks) return BAIL;
            Py_ssize_t from = levels->n;
            if ((rc = read_levels(c, price_dec, size_dec, levels))) return rc;
            if (is_bids) {
                have_bids = 1;
                bf = from;
                bt = levels->n;
            } else {
                have_asks = 1;
                af = from;
                at = levels->n;
            }
        } else if (skip_scalar(c)) {
            return BAIL;
        }
        if (c->p >= c->end) return BAIL;
        if (*c->p == '}') {
            c->p++;
            break;
        }
        if (*c->p != ',') return BAIL;
        c->p++;
    }
    if (c->p != c->end) return BAIL;
    if (!have_data) {
        if (!have_id || !have_bids || !have_asks) return BAIL;
        return add_record(blk, 0, index, ts, -1, snapshot_id, -1, levels, bf, bt, af, at);
    }
    if (have_id || have_bids || have_asks) return BAIL;
    if (m.kind == KIND_TRADE) {
        blk->trades++;
        return 0;
    }
    if (m.kind == KIND_DIFF) {
        if (!blk->have_first_diff) {
            blk->have_first_diff = 1;
            blk->first_pu = m.pu;
            blk->first_symbol = PyUnicode_FromStringAndSize(m.s ? m.s : "", m.s_len);
            if (blk->first_symbol == NULL) return -2;
        }
        return add_record(blk, 1, index, ts, m.U, m.u, m.pu, levels, m.bids_from, m.bids_to,
                          m.asks_from, m.asks_to);
    }
    long long bid, bid_size, ask, ask_size;
    if (decimal_units(m.b, m.b_len, price_dec, &bid) ||
        decimal_units(m.B, m.B_len, size_dec, &bid_size) ||
        decimal_units(m.a, m.a_len, price_dec, &ask) ||
        decimal_units(m.A, m.A_len, size_dec, &ask_size))
        return BAIL;
    if (m.u < blk->last_ticker) {
        blk->out_of_order++;
        return 0;
    }
    blk->last_ticker = m.u;
    PyObject *ticker = Py_BuildValue("(LLLLL)", m.u, bid, bid_size, ask, ask_size);
    if (ticker == NULL) return -2;
    rc = PyList_Append(blk->tickers, ticker);
    Py_DECREF(ticker);
    if (rc) return -2;
    PyObject *id = PyLong_FromLongLong(m.u);
    if (id == NULL) return -2;
    rc = PyList_Append(blk->ticker_ids, id);
    Py_DECREF(id);
    return rc ? -2 : 0;
}

PyDoc_STRVAR(scan_block_doc,
"scan_block(text, price_decimals, size_decimals, last_ticker_id)\n"
"--\n\n"
"Read a block of whole capture lines for the book check.\n\n"
"Returns (lines, trades, out_of_order, last_ticker_id, records, tickers, ticker_ids,\n"
"first_diff_pu, first_diff_symbol), or None when the block holds anything but the plain\n"
"shapes (the caller then decodes it with msgspec). records: (kind, index, ts, U, u, pu,\n"
"bids, asks, tickers_before) per snapshot (kind 0, u = lastUpdateId) and diff (kind 1);\n"
"tickers: (u, bid, bid_size, ask, ask_size) of the bookTickers kept (ids not going back).");

static PyObject *scan_block(PyObject *self, PyObject *args) {
    Py_buffer text;
    int price_dec, size_dec;
    long long last_ticker;
    if (!PyArg_ParseTuple(args, "y*iiL", &text, &price_dec, &size_dec, &last_ticker))
        return NULL;
    const char *p = text.buf;
    const char *end = p + text.len;
    Buffer levels = {NULL, 0, 0};
    Block blk = {PyList_New(0), PyList_New(0), PyList_New(0), last_ticker, 0, 0, 0, -1, NULL};
    PyObject *result = NULL;
    int rc = 0;
    Py_ssize_t index = 0;
    if (blk.records == NULL || blk.tickers == NULL || blk.ticker_ids == NULL) {
        rc = -2;
        goto done;
    }
    if (text.len == 0 || end[-1] != '\n') {
        rc = BAIL;
        goto done;
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        Cursor c = {p, nl};
        if ((rc = read_line(&c, index, price_dec, size_dec, &levels, &blk))) goto done;
        levels.n = 0;
        p = nl + 1;
        index++;
    }
    result = Py_BuildValue(
        "(nnnLOOOLO)", index, blk.trades, blk.out_of_order, blk.last_ticker, blk.records,
        blk.tickers, blk.ticker_ids, blk.first_pu,
        blk.first_symbol ? blk.first_symbol : Py_None);
done:
    PyBuffer_Release(&text);
    PyMem_Free(levels.v);
    Py_XDECREF(blk.records);
    Py_XDECREF(blk.tickers);
    Py_XDECREF(blk.ticker_ids);
    Py_XDECREF(blk.first_symbol);
    if (rc == BAIL) Py_RETURN_NONE;
    return result;
}

PyDoc_STRVAR(update_side_doc,
"update_side(book, levels, best, dirty, bids)\n"
"--\n\n"
"OrderBook.update_flat for one side: set each (price, size) of the flat list levels in\n"
"the dict book, in order (size 0 deletes), keeping the cached best as tight as the\n"
"updates allow. best/dirty: the book's cache (clean: the best, None when the side is\n"
"empty; dirty: no live price is better than best, None when unknown). Returns the new\n"
"(best, dirty).");

static PyObject *update_side(PyObject *self, PyObject *args) {
    PyObject *book, *levels, *best;
    int dirty, bids;
    if (!PyArg_ParseTuple(args, "O!OOpp", &PyDict_Type, &book, &levels, &best, &dirty, &bids))
        return NULL;
    PyObject *seq = PySequence_Fast(levels, "levels must be a sequence");
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    if (n % 2) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "levels must be flat [price, size, ...] pairs");
        return NULL;
    }
    int op = bids ? Py_GT : Py_LT;
    Py_INCREF(best);
    for (Py_ssize_t i = 0; i < n; i += 2) {
        PyObject *price = items[i];
        PyObject *size = items[i + 1];
        int zero = PyObject_Not(size);
        if (zero < 0) goto fail;
        if (zero) {
            int held = PyDict_Contains(book, price);
            if (held < 0 || (held && PyDict_DelItem(book, price) < 0)) goto fail;
            if (held && !dirty && best != Py_None) {
                int top = PyObject_RichCompareBool(price, best, Py_EQ);
                if (top < 0) goto fail;
                dirty = top;  /* the best left: it stays as a bound nothing passes */
            }
            continue;
        }
        if (PyDict_SetItem(book, price, size) < 0) goto fail;
        if (best == Py_None) {
            if (dirty) continue;  /* unknown best: the next read scans */
        } else {
            int better = PyObject_RichCompareBool(price, best, op);
            if (better < 0) goto fail;
            if (!better) {
                if (dirty) {  /* the bound itself came back: it is the best again */
                    int same = PyObject_RichCompareBool(price, best, Py_EQ);
                    if (same < 0) goto fail;
                    if (same) dirty = 0;
                }
                continue;
            }
        }
        Py_INCREF(price);
        Py_SETREF(best, price);
        dirty = 0;
    }
    Py_DECREF(seq);
    return Py_BuildValue("(NO)", best, dirty ? Py_True : Py_False);
fail:
    Py_DECREF(seq);
    Py_DECREF(best);
    return NULL;
}

static PyMethodDef methods[] = {
    {"scan_block", scan_block, METH_VARARGS, scan_block_doc},
    {"update_side", update_side, METH_VARARGS, update_side_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastbook",
    "Compiled fast path of the Binance book check (see _fastbook.c).", -1, methods,
};

PyMODINIT_FUNC PyInit__fastbook(void) { return PyModule_Create(&module); }
