/* The fast path's token loop, compiled: an optional accelerator of FastPath.run.
 *
 * vncmux/console/fastpath.py is the reference: this file does what FastPath.run does, token
 * for token, and the differential tests run every fast-path test on both.  Two parts:
 *
 *   - scan(): the tokens of fasttokens.TOKEN, recognised by hand (the same kinds, numbered by
 *     the pattern's groups, and the same spans; tests/test_fastloop.py checks it against the
 *     pattern on random text);
 *   - run(): the loop of FastPath.run.  What the Python loop does inline (text, SGR, CUP,
 *     character sets, CR, LF, erases, cursor moves, DECSTBM, DECTCEM, quiet modes) is done
 *     here; what it hands to a method (a cache miss, a wrapped line, a region scroll, a
 *     screen method) calls the same method.
 *
 * Only the CPython API touches Python objects, every read of the text is bounded by its
 * length, and every failure of a call ends the run as the Python loop's "except" does.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* What fastpath.configure() hands over once: the Python path's own constants. */
static PyObject *LAT1_MAP, *MAPS, *DECAWM, *LNM, *DECTCEM, *DECTCEM_KEY, *QUIET_MODES,
    *MORE_FIX, *SD_ENTRY, *EDITS;

/* Interned names. */
static PyObject *n_screen, *n_columns, *n_lines, *n_cursor, *n_x, *n_y, *n_attrs, *n_mode,
    *n_margins, *n_iso_protection, *n_g0_charset, *n_g1_charset, *n_charset, *n_stored_line,
    *n_default_char, *n_last_char, *n_declrmm, *n_tabstops, *n_other_modes, *n_trans,
    *n_hidden, *n_state, *n_after_sgr, *n_cup, *n_stbm, *n_params, *n_wrapped, *n_mixed,
    *n_narrow_prefix, *n_erase, *n_fill, *n_base, *n_scroll, *n_call, *n_charset_m,
    *n_usable, *n_begin, *n_finish, *n_set_mode, *n_reset_mode, *n_set_keypad, *n_bell,
    *n_shift_out, *n_shift_in, *n_dropped, *n_csi, *n_escapes, *n_ints, *n_cups, *n_stbms,
    *n_narrow, *n_off, *n_translate, *n_issuperset, *n_private, *n_runs, *n_run, *n_fill_attr;

#define BIG (PY_SSIZE_T_MAX / 4) /* integer parameters are clamped to +-BIG (beyond any size) */

/* ---- the scanner ------------------------------------------------------------------ */

typedef struct {
    int k;                  /* the pattern's lastindex: which kind of token */
    Py_ssize_t start, end;  /* the token's span */
    Py_ssize_t gs[24], ge[24]; /* the spans of the groups of that kind (-1: not taking part) */
} Tok;

typedef struct {
    int kind;
    const void *buf;
    Py_ssize_t n;
} Text;

static inline Py_UCS4 ch(const Text *t, Py_ssize_t i)
{
    return i < t->n ? PyUnicode_READ(t->kind, t->buf, i) : 0xFFFFFFFF;
}

static inline int is_printable(Py_UCS4 c) /* _T: not C0, DEL or C1 */
{
    return !(c <= 0x1f || (c >= 0x7f && c <= 0x9f)) && c != 0xFFFFFFFF;
}

static inline int is_param(Py_UCS4 c) /* _P's characters */
{
    return (c >= '0' && c <= '9') || c == ';' || c == ':';
}

static Py_ssize_t params_end(const Text *t, Py_ssize_t i)
{
    while (i < t->n && is_param(ch(t, i)))
        i++;
    return i;
}

static Py_ssize_t text_end(const Text *t, Py_ssize_t i)
{
    while (i < t->n && is_printable(ch(t, i)))
        i++;
    return i;
}

/* _SGRS followed by "m", from just after "ESC [": the index of that last "m", or -1.  Each
 * further SGR ("m", maybe "ESC ( B", "ESC [", parameters) is taken only when it is complete,
 * which is what the pattern's greedy repetition gives. */
static Py_ssize_t sgrs_end(const Text *t, Py_ssize_t i)
{
    Py_ssize_t j = params_end(t, i);
    if (ch(t, j) != 'm')
        return -1;
    for (;;) {
        Py_ssize_t q = j + 1;
        if (ch(t, q) == 0x1b && ch(t, q + 1) == '(' && ch(t, q + 2) == 'B')
            q += 3;
        if (ch(t, q) != 0x1b || ch(t, q + 1) != '[')
            break;
        Py_ssize_t r = params_end(t, q + 2);
        if (ch(t, r) != 'm')
            break;
        j = r;
    }
    return j;
}

static inline void group(Tok *tok, int g, Py_ssize_t s, Py_ssize_t e)
{
    tok->gs[g] = s;
    tok->ge[g] = e;
}

static int in_set(Py_UCS4 c, const char *set)
{
    return c < 128 && c != 0 && strchr(set, (int)c) != NULL;
}

/* The token at ``pos``: 1 (``tok`` filled in) or 0 (no token starts there). */
static int scan_at(const Text *t, Py_ssize_t pos, Tok *tok)
{
    Py_UCS4 c = ch(t, pos);
    Py_ssize_t i, j;
    tok->start = pos;
    if (pos >= t->n)
        return 0;
    if (is_printable(c)) {
        j = text_end(t, pos);
        group(tok, 1, pos, j);
        if (ch(t, j) == '\r' && ch(t, j + 1) == '\n') {
            group(tok, 2, j, j + 2);
            tok->k = 2;
            tok->end = j + 2;
        } else {
            tok->gs[2] = tok->ge[2] = -1;
            tok->k = 1;
            tok->end = j;
        }
        return 1;
    }
    if (c == 0x1b) {
        Py_UCS4 d = ch(t, pos + 1);
        if (d == '[') {
            i = pos + 2;
            j = sgrs_end(t, i);
            if (j >= 0) { /* 3, 4: SGR and the text after it */
                group(tok, 3, i, j);
                Py_ssize_t e = text_end(t, j + 1);
                group(tok, 4, j + 1, e);
                tok->k = 4;
                tok->end = e;
                return 1;
            }
            j = params_end(t, i);
            Py_UCS4 f = ch(t, j);
            if (f == 'H') {
                group(tok, 5, i, j);
                Py_ssize_t e = text_end(t, j + 1);
                group(tok, 6, j + 1, e);
                tok->k = 6;
                tok->end = e;
                return 1;
            }
            if (in_set(f, "@ABCDEFGILMPSTXZ`adehlt") || in_set(f, "fKJ") || f == 'b') {
                int k = f == 'b' ? 9 : in_set(f, "fKJ") ? 8 : 7;
                group(tok, 5, i, j);
                group(tok, k, j, j + 1);
                tok->k = k;
                tok->end = j + 1;
                return 1;
            }
            if (f == 'r') { /* 10: DECSTBM, and a CUP right after it (or "") */
                Py_ssize_t e = j + 1;
                if (ch(t, e) == 0x1b && ch(t, e + 1) == '[') {
                    Py_ssize_t r = params_end(t, e + 2);
                    if (ch(t, r) == 'H')
                        e = r + 1;
                }
                group(tok, 5, i, j);
                group(tok, 10, j + 1, e);
                tok->k = 10;
                tok->end = e;
                return 1;
            }
            if (j != i || f != '?')
                return 0;
            /* 11: DECTCEM (several in a row: the last), else 12, 13: DEC private modes */
            if (ch(t, i + 1) == '2' && ch(t, i + 2) == '5' && in_set(ch(t, i + 3), "hl")) {
                Py_ssize_t last = i + 3;
                while (ch(t, last + 1) == 0x1b && ch(t, last + 2) == '[' &&
                       ch(t, last + 3) == '?' && ch(t, last + 4) == '2' &&
                       ch(t, last + 5) == '5' && in_set(ch(t, last + 6), "hl"))
                    last += 6;
                group(tok, 11, last, last + 1);
                tok->k = 11;
                tok->end = last + 1;
                return 1;
            }
            j = params_end(t, i + 1);
            if (!in_set(ch(t, j), "hl"))
                return 0;
            group(tok, 12, i + 1, j);
            group(tok, 13, j, j + 1);
            tok->k = 13;
            tok->end = j + 1;
            return 1;
        }
        if (d == '(' || d == ')') { /* 14-17: a character set, maybe SGR, text */
            Py_UCS4 code = ch(t, pos + 2);
            if (!((code >= '0' && code <= '9') || (code >= 'A' && code <= 'Z' && code != 'P' &&
                                                   code != 'X')))
                return 0;
            group(tok, 14, pos + 1, pos + 2);
            group(tok, 15, pos + 2, pos + 3);
            Py_ssize_t tp = pos + 3;
            tok->gs[16] = tok->ge[16] = -1;
            if (ch(t, tp) == 0x1b && ch(t, tp + 1) == '[') {
                j = sgrs_end(t, tp + 2);
                if (j >= 0) {
                    group(tok, 16, tp + 2, j);
                    tp = j + 1;
                }
            }
            Py_ssize_t e = text_end(t, tp);
            group(tok, 17, tp, e);
            tok->k = 17;
            tok->end = e;
            return 1;
        }
        if (in_set(d, "78DEM=>")) {
            group(tok, 18, pos + 1, pos + 2);
            tok->k = 18;
            tok->end = pos + 2;
            return 1;
        }
        return 0;
    }
    if (c == '\r') {
        int k = ch(t, pos + 1) == '\n' ? 19 : 20;
        tok->k = k;
        tok->end = pos + (k == 19 ? 2 : 1);
        group(tok, k, pos, tok->end);
        return 1;
    }
    if (c == '\n' || c == 0x0b || c == 0x0c) {
        tok->k = 21;
        tok->end = pos + 1;
        group(tok, 21, pos, pos + 1);
        return 1;
    }
    if (c == 0x07 || c == 0x08 || c == '\t' || c == 0x0e || c == 0x0f) {
        j = pos + 1;
        if (c == 0x07)
            while (j < t->n && ch(t, j) == 0x07)
                j++;
        tok->k = 23;
        tok->end = j;
        group(tok, 23, pos, j);
        return 1;
    }
    if (c <= 0x1f || c == 0x7f) { /* 22: the C0 controls that do nothing here */
        j = pos;
        while (j < t->n) {
            Py_UCS4 e = ch(t, j);
            if (!(e <= 0x06 || (e >= 0x10 && e <= 0x1a) || (e >= 0x1c && e <= 0x1f) ||
                  e == 0x7f))
                break;
            j++;
        }
        tok->k = 22;
        tok->end = j;
        group(tok, 22, pos, j);
        return 1;
    }
    return 0;
}

static int text_of(PyObject *data, Text *t)
{
    if (!PyUnicode_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "the text must be a str");
        return -1;
    }
    t->kind = PyUnicode_KIND(data);
    t->buf = PyUnicode_DATA(data);
    t->n = PyUnicode_GET_LENGTH(data);
    return 0;
}

/* The groups each kind reports (for scan(): the test compares them with the pattern's). */
static const int GROUPS[24][5] = {
    [1] = {1}, [2] = {1, 2}, [4] = {3, 4}, [6] = {5, 6}, [7] = {5, 7}, [8] = {5, 8},
    [9] = {5, 9}, [10] = {5, 10}, [11] = {11}, [13] = {12, 13}, [17] = {14, 15, 16, 17},
    [18] = {18}, [19] = {19}, [20] = {20}, [21] = {21}, [22] = {22}, [23] = {23},
};

static PyObject *scan(PyObject *self, PyObject *args)
{
    PyObject *data;
    Py_ssize_t pos;
    Text t;
    Tok tok;
    if (!PyArg_ParseTuple(args, "Un", &data, &pos) || text_of(data, &t) < 0)
        return NULL;
    if (pos < 0 || !scan_at(&t, pos, &tok))
        Py_RETURN_NONE;
    PyObject *spans = PyList_New(0);
    if (spans == NULL)
        return NULL;
    for (int i = 0; i < 5 && GROUPS[tok.k][i]; i++) {
        int g = GROUPS[tok.k][i];
        PyObject *span = Py_BuildValue("(inn)", g, tok.gs[g], tok.ge[g]);
        if (span == NULL || PyList_Append(spans, span) < 0) {
            Py_XDECREF(span);
            Py_DECREF(spans);
            return NULL;
        }
        Py_DECREF(span);
    }
    return Py_BuildValue("(inN)", tok.k, tok.end, spans);
}

/* ---- the run ------------------------------------------------------------------------ */

typedef struct {
    PyObject *fp, *s, *data;
    Text t;
    Py_ssize_t cols, lines, last, x, y, off, top, bottom;
    int wrap, lnm, full, iso, g0_ascii, plain, asis;
    /* owned references */
    PyObject *cursor, *st, *rows, *tr, *last_text, *mode, *stored, *dflt, *narrow, *pints,
        *cups, *stbms, *csi, *escapes;
} Run;

static void run_clear(Run *r)
{
    Py_CLEAR(r->cursor);
    Py_CLEAR(r->st);
    Py_CLEAR(r->rows);
    Py_CLEAR(r->tr);
    Py_CLEAR(r->last_text);
    Py_CLEAR(r->mode);
    Py_CLEAR(r->stored);
    Py_CLEAR(r->dflt);
    Py_CLEAR(r->narrow);
    Py_CLEAR(r->pints);
    Py_CLEAR(r->cups);
    Py_CLEAR(r->stbms);
    Py_CLEAR(r->csi);
    Py_CLEAR(r->escapes);
}

static inline void set_ref(PyObject **slot, PyObject *value) /* steals ``value`` */
{
    PyObject *old = *slot;
    *slot = value;
    Py_XDECREF(old);
}

static inline Py_ssize_t mn(Py_ssize_t a, Py_ssize_t b) { return a < b ? a : b; }
static inline Py_ssize_t mx(Py_ssize_t a, Py_ssize_t b) { return a > b ? a : b; }

/* A Python int as a Py_ssize_t clamped to +-BIG; -1 with an error set when it is not one. */
static int clamp(PyObject *o, Py_ssize_t *out)
{
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow)
        *out = overflow > 0 ? BIG : -BIG;
    else
        *out = v > BIG ? BIG : v < -BIG ? -BIG : (Py_ssize_t)v;
    return 0;
}

static int get_size(PyObject *o, PyObject *name, Py_ssize_t *out)
{
    PyObject *v = PyObject_GetAttr(o, name);
    if (v == NULL)
        return -1;
    int rc = clamp(v, out);
    Py_DECREF(v);
    return rc;
}

/* ``ints[i] if len(ints) > i else 0`` (a parameter list of Python ints). */
static int nth(PyObject *ints, Py_ssize_t i, Py_ssize_t *out)
{
    if (PyList_GET_SIZE(ints) <= i) {
        *out = 0;
        return 0;
    }
    return clamp(PyList_GET_ITEM(ints, i), out);
}

static PyObject *sub(Run *r, Py_ssize_t s, Py_ssize_t e)
{
    return PyUnicode_Substring(r->data, s, e);
}

/* A dict lookup that returns a new reference, or NULL with no error when absent. */
static PyObject *lookup(PyObject *dict, PyObject *key)
{
    PyObject *v = PyDict_GetItemWithError(dict, key);
    Py_XINCREF(v);
    return v;
}

/* Pending row ``a``: the row list, made from its stored line (or a fresh one) when it was
 * None (the original row).  A borrowed reference. */
static PyObject *row_at(Run *r, Py_ssize_t a)
{
    PyObject *row = PyList_GET_ITEM(r->rows, a);
    if (row != Py_None)
        return row;
    PyObject *base;
    if (a < r->lines) {
        PyObject *line = PyObject_CallFunction(r->stored, "n", a);
        if (line == NULL)
            return NULL;
        if (line == Py_None) {
            Py_DECREF(line);
            base = Py_NewRef(r->dflt);
        } else {
            base = line;
        }
    } else {
        base = Py_NewRef(r->dflt);
    }
    row = PyList_New(1);
    if (row == NULL) {
        Py_DECREF(base);
        return NULL;
    }
    PyList_SET_ITEM(row, 0, base);
    if (PyList_SetItem(r->rows, a, row) < 0) /* (steals ``row``; the list holds it) */
        return NULL;
    return row;
}

/* ``row.append((x, text, cells))`` */
static int append_op(PyObject *row, Py_ssize_t x, PyObject *text, PyObject *cells)
{
    PyObject *op = Py_BuildValue("(nOO)", x, text, cells);
    if (op == NULL)
        return -1;
    int rc = PyList_Append(row, op);
    Py_DECREF(op);
    return rc;
}

/* The pending rows a helper returned (steals ``rows``): a list, or a TypeError. */
static int take_rows(Run *r, PyObject *rows)
{
    if (rows == NULL)
        return -1;
    if (!PyList_Check(rows)) {
        Py_DECREF(rows);
        PyErr_SetString(PyExc_TypeError, "fast path: the pending rows must be a list");
        return -1;
    }
    set_ref(&r->rows, rows);
    return 0;
}

/* ``rows = self._scroll(rows, off, top, bottom, count, off_top); off = 0`` */
static int scroll_rows(Run *r, Py_ssize_t top, Py_ssize_t bottom, Py_ssize_t count, int off_top)
{
    PyObject *rows = PyObject_CallMethod(r->fp, "_scroll", "OnnnnO", r->rows, r->off, top,
                                         bottom, count, off_top ? Py_True : Py_False);
    if (take_rows(r, rows) < 0)
        return -1;
    r->off = 0;
    return 0;
}

/* A line feed (LF, VT, FF, IND, NEL, the CR LF after text): down a row, or a scroll at the
 * bottom margin (of the whole screen: one more pending row). */
static int line_feed(Run *r)
{
    if (r->y == r->bottom) {
        if (r->full) {
            r->off += 1;
            return PyList_Append(r->rows, Py_None);
        }
        return scroll_rows(r, r->top, r->bottom, 1, 1);
    }
    if (r->y < r->last)
        r->y += 1;
    return 0;
}

/* ``x, y, off, rows = self._wrapped(t, x, y, off, rows, st, wrap, full)`` */
static int wrapped(Run *r, PyObject *text)
{
    PyObject *res = PyObject_CallMethod(r->fp, "_wrapped", "OnnnOOOO", text, r->x, r->y, r->off,
                                        r->rows, r->st, r->wrap ? Py_True : Py_False,
                                        r->full ? Py_True : Py_False);
    if (res == NULL)
        return -1;
    if (!PyTuple_Check(res) || PyTuple_GET_SIZE(res) != 4) {
        Py_DECREF(res);
        PyErr_SetString(PyExc_TypeError, "_wrapped: expected 4 values");
        return -1;
    }
    if (clamp(PyTuple_GET_ITEM(res, 0), &r->x) < 0 || clamp(PyTuple_GET_ITEM(res, 1), &r->y) < 0 ||
        clamp(PyTuple_GET_ITEM(res, 2), &r->off) < 0) {
        Py_DECREF(res);
        return -1;
    }
    int rc = take_rows(r, Py_NewRef(PyTuple_GET_ITEM(res, 3)));
    Py_DECREF(res);
    return rc;
}

/* The attribute set SGR ``params`` lead to from ``st`` (its transition table, else
 * ``_after_sgr``); then an "ESC ( B" among them designates ASCII as G0. */
static int sgr(Run *r, PyObject *params, int set_asis)
{
    PyObject *trans = PyObject_GetAttr(r->st, n_trans);
    if (trans == NULL)
        return -1;
    PyObject *nxt = PyDict_Check(trans) ? lookup(trans, params) : NULL;
    Py_DECREF(trans);
    if (nxt == NULL) {
        if (PyErr_Occurred())
            return -1;
        nxt = PyObject_CallMethodObjArgs(r->fp, n_after_sgr, r->st, params, NULL);
        if (nxt == NULL)
            return -1;
    }
    set_ref(&r->st, nxt);
    if (!r->g0_ascii &&
        PyUnicode_FindChar(params, '(', 0, PyUnicode_GET_LENGTH(params), 1) >= 0) {
        if (PyObject_SetAttr(r->s, n_g0_charset, LAT1_MAP) < 0)
            return -1;
        r->g0_ascii = 1;
        PyObject *cs = PyObject_GetAttr(r->s, n_charset);
        if (cs == NULL)
            return -1;
        int on = PyObject_IsTrue(cs);
        Py_DECREF(cs);
        if (on < 0)
            return -1;
        if (!on) {
            set_ref(&r->tr, Py_NewRef(Py_None));
            if (set_asis)
                r->asis = r->plain;
        }
    }
    return 0;
}

/* Where CUP parameters put the cursor (the ``_cups`` cache, else ``_cup``). */
static int cup(Run *r, PyObject *params)
{
    PyObject *pos = lookup(r->cups, params);
    if (pos == NULL) {
        if (PyErr_Occurred())
            return -1;
        pos = PyObject_CallMethodObjArgs(r->fp, n_cup, params, NULL);
        if (pos == NULL)
            return -1;
    }
    int rc = 0;
    if (PyTuple_Check(pos) && PyTuple_GET_SIZE(pos) == 2)
        rc = (clamp(PyTuple_GET_ITEM(pos, 0), &r->x) < 0 ||
              clamp(PyTuple_GET_ITEM(pos, 1), &r->y) < 0)
                 ? -1
                 : 0;
    Py_DECREF(pos);
    return rc;
}

/* ``self._params(p)``, read from its cache first: a new reference (a list, or None). */
static PyObject *params_of(Run *r, PyObject *p)
{
    PyObject *ints = lookup(r->pints, p);
    if (ints == NULL && !PyErr_Occurred())
        ints = PyObject_CallMethodObjArgs(r->fp, n_params, p, NULL);
    if (ints != NULL && ints != Py_None && !PyList_Check(ints)) {
        Py_DECREF(ints);
        PyErr_SetString(PyExc_TypeError, "_params: expected a list");
        return NULL;
    }
    return ints;
}

/* The integer parameters in text[s:e] (a new reference: a list, or None), read from the
 * ``_params`` cache first when ``cached`` (as the Python loop does where it reads it inline). */
static PyObject *params_in(Run *r, Py_ssize_t s, Py_ssize_t e, int cached)
{
    PyObject *p = sub(r, s, e);
    if (p == NULL)
        return NULL;
    PyObject *ints = cached ? params_of(r, p) : PyObject_CallMethodObjArgs(r->fp, n_params, p, NULL);
    Py_DECREF(p);
    return ints;
}

/* The state read again after a screen method ran (``_call``): its results, and for DECRC
 * (which may change anything) margins and character sets too. */
static int take_call(Run *r, PyObject *res)
{
    if (res == NULL)
        return -1;
    if (!PyTuple_Check(res) || PyTuple_GET_SIZE(res) != 6) {
        Py_DECREF(res);
        PyErr_SetString(PyExc_TypeError, "_call: expected 6 values");
        return -1;
    }
    if (take_rows(r, Py_NewRef(PyTuple_GET_ITEM(res, 0))) < 0 ||
        !PyUnicode_Check(PyTuple_GET_ITEM(res, 5)) || clamp(PyTuple_GET_ITEM(res, 1), &r->off) < 0 ||
        clamp(PyTuple_GET_ITEM(res, 2), &r->x) < 0 || clamp(PyTuple_GET_ITEM(res, 3), &r->y) < 0) {
        Py_DECREF(res);
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "_call: the last text must be a str");
        return -1;
    }
    set_ref(&r->st, Py_NewRef(PyTuple_GET_ITEM(res, 4)));
    set_ref(&r->last_text, Py_NewRef(PyTuple_GET_ITEM(res, 5)));
    Py_DECREF(res);
    return 0;
}

static int usable(Run *r)
{
    PyObject *u = PyObject_CallMethodNoArgs(r->fp, n_usable);
    if (u == NULL)
        return -1;
    int ok = PyObject_IsTrue(u);
    Py_DECREF(u);
    return ok;
}

static int read_margins(Run *r)
{
    PyObject *m = PyObject_GetAttr(r->s, n_margins);
    if (m == NULL)
        return -1;
    int rc = 0;
    if (m == Py_None || !PyObject_IsTrue(m)) {
        r->top = 0;
        r->bottom = r->last;
    } else if (PyTuple_Check(m) && PyTuple_GET_SIZE(m) == 2) {
        rc = (clamp(PyTuple_GET_ITEM(m, 0), &r->top) < 0 ||
              clamp(PyTuple_GET_ITEM(m, 1), &r->bottom) < 0)
                 ? -1
                 : 0;
    } else {
        PyErr_SetString(PyExc_TypeError, "margins: expected two values");
        rc = -1;
    }
    Py_DECREF(m);
    r->full = r->top == 0 && r->bottom == r->last;
    return rc;
}

static int read_charset(Run *r)
{
    PyObject *tr = PyObject_CallMethodNoArgs(r->fp, n_charset_m);
    if (tr == NULL)
        return -1;
    set_ref(&r->tr, tr);
    PyObject *g0 = PyObject_GetAttr(r->s, n_g0_charset);
    if (g0 == NULL)
        return -1;
    r->g0_ascii = g0 == LAT1_MAP;
    Py_DECREF(g0);
    r->asis = r->plain && r->tr == Py_None;
    return 0;
}

static int contains(PyObject *set, PyObject *key)
{
    return PySet_Contains(set, key);
}

/* One-cell text ``t`` (owned; consumed) at the cursor: appended to its row when it fits,
 * else ``_wrapped``. */
static int put_text(Run *r, PyObject *t)
{
    Py_ssize_t e = r->x + PyUnicode_GET_LENGTH(t);
    int rc;
    if (e <= r->cols) {
        PyObject *row = row_at(r, r->off + r->y);
        rc = row == NULL ? -1 : append_op(row, r->x, t, r->st);
        if (rc == 0)
            r->x = e;
    } else {
        rc = wrapped(r, t);
    }
    Py_DECREF(t);
    return rc;
}

/* The text part of a text token (FastPath.run's branches on ``t``; one-cell text in a
 * character set that fits on the row is appended here, where Python calls ``_wrapped``,
 * which appends the same operation): 1 when the run must end before the character at
 * ``*stop`` (one only the slow path draws), 0 when done, -1 on error.  ``t`` is owned
 * (consumed). */
static int text(Run *r, PyObject *t, Py_ssize_t text_start, Py_ssize_t *stop)
{
    if (PyUnicode_GET_LENGTH(t) == 0) {
        Py_DECREF(t);
        return 0;
    }
    PyObject *raw = t; /* (t's reference now) */
    PyObject *shown = Py_NewRef(t);
    if (!r->asis) {
        if (r->tr != Py_None) {
            set_ref(&shown, PyObject_CallMethodOneArg(raw, n_translate, r->tr));
            if (shown == NULL)
                goto fail;
        }
        int narrow_ok = PyUnicode_IS_ASCII(shown);
        if (!narrow_ok) {
            PyObject *ok = PyObject_CallMethodOneArg(r->narrow, n_issuperset, shown);
            if (ok == NULL)
                goto fail;
            narrow_ok = PyObject_IsTrue(ok);
            Py_DECREF(ok);
            if (narrow_ok < 0)
                goto fail;
        }
        if (!narrow_ok) {
            PyObject *res = PyObject_CallMethod(
                r->fp, "_mixed", "OnnnOOOO", shown, r->x, r->y, r->off, r->rows, r->st,
                r->wrap ? Py_True : Py_False, r->full ? Py_True : Py_False);
            if (res == NULL)
                goto fail;
            Py_ssize_t used;
            if (!PyTuple_Check(res) || PyTuple_GET_SIZE(res) != 4 ||
                clamp(PyTuple_GET_ITEM(res, 0), &r->x) < 0 ||
                clamp(PyTuple_GET_ITEM(res, 1), &r->y) < 0 ||
                clamp(PyTuple_GET_ITEM(res, 2), &r->off) < 0 ||
                clamp(PyTuple_GET_ITEM(res, 3), &used) < 0) {
                Py_DECREF(res);
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_TypeError, "_mixed: expected 4 values");
                goto fail;
            }
            Py_DECREF(res);
            if (used > 0) {
                PyObject *lt = PyUnicode_Substring(raw, 0, used);
                if (lt == NULL)
                    goto fail;
                set_ref(&r->last_text, lt);
            }
            int stopped = used < PyUnicode_GET_LENGTH(shown);
            *stop = text_start + used;
            Py_DECREF(shown);
            Py_DECREF(raw);
            return stopped;
        }
    }
    set_ref(&r->last_text, raw);
    return put_text(r, shown) < 0 ? -1 : 0;
fail:
    Py_XDECREF(shown);
    Py_DECREF(raw);
    return -1;
}

/* ``" " * count`` */
static PyObject *spaces(Py_ssize_t count)
{
    count = count > 0 ? count : 0;
    PyObject *t = PyUnicode_New(count, ' ');
    if (t != NULL && count > 0)
        PyUnicode_Fill(t, 0, count, ' ');
    return t;
}

/* ``[cell]``: a fresh pending row of that cell, put at ``rows[a]``. */
static int fresh_row(Run *r, Py_ssize_t a, PyObject *cell)
{
    PyObject *row = PyList_New(1);
    if (row == NULL)
        return -1;
    PyList_SET_ITEM(row, 0, Py_NewRef(cell));
    return PyList_SetItem(r->rows, a, row);
}

/* ED / EL on the pending rows (PendingRows._erase). */
static int erase(Run *r, Py_UCS4 final, Py_ssize_t how)
{
    PyObject *fill = PyObject_GetAttr(r->st, n_fill_attr);
    if (fill == Py_None) {
        Py_DECREF(fill);
        fill = PyObject_CallMethodOneArg(r->fp, n_fill, r->st);
    }
    if (fill == NULL)
        return -1;
    PyObject *space = PyUnicode_FromOrdinal(' ');
    PyObject *blank = space == NULL ? NULL : PyObject_GetItem(fill, space);
    Py_XDECREF(space);
    int rc = blank == NULL ? -1 : 0;
    Py_ssize_t a = r->off + r->y, i;
    if (rc == 0 && final == 'J') {
        Py_ssize_t from, to;
        if (how == 0)
            from = r->y + 1, to = r->lines;
        else if (how == 1)
            from = 0, to = r->y;
        else if (how == 2)
            from = 0, to = r->lines;
        else
            goto done; /* 3 erases the saved lines only (as the slow path) */
        for (i = from; i < to && rc == 0; i++)
            rc = fresh_row(r, r->off + i, blank);
        if (how >= 2)
            goto done;
    }
    if (rc == 0 && how == 2) {
        rc = fresh_row(r, a, blank);
    } else if (rc == 0 && (how == 0 || how == 1)) {
        PyObject *row = row_at(r, a);
        Py_ssize_t xx = mn(r->x, r->cols - 1);
        PyObject *t = row == NULL ? NULL : spaces(how == 0 ? r->cols - xx : xx + 1);
        rc = t == NULL ? -1 : append_op(row, how == 0 ? xx : 0, t, fill);
        Py_XDECREF(t);
    }
done:
    Py_XDECREF(blank);
    Py_DECREF(fill);
    return rc;
}

/* What a CSI token of group 7 or 8 does (FastPath.run's branch of the same name): 1 when
 * the run ends (``*end`` set), 0 when done, -1 on error. */
static int csi_edit(Run *r, const Tok *tok, Py_ssize_t *end)
{
    Py_UCS4 final = ch(&r->t, tok->gs[tok->k]);
    if (r->iso && (final == 'K' || final == 'J' || final == 'X')) {
        *end = tok->start;
        return 1;
    }
    PyObject *ints = params_in(r, tok->gs[5], tok->ge[5], 1);
    if (ints == NULL)
        return -1;
    int rc = 0;
    Py_ssize_t n0, n1, n;
    if (ints == Py_None)
        goto done;
    if (nth(ints, 0, &n0) < 0) {
        rc = -1;
        goto done;
    }
    n = n0 ? n0 : 1;
    if (final == 'f') { /* HVP */
        if (nth(ints, 1, &n1) < 0) {
            rc = -1;
            goto done;
        }
        r->x = mn(mx(0, (n1 ? n1 : 1) - 1), r->cols - 1);
        r->y = mn(mx(0, n - 1), r->last);
    } else if (tok->k == 8) { /* EL, ED */
        rc = erase(r, final, n0);
    } else if (final == 'X') { /* ECH */
        Py_ssize_t xx = mn(r->x, r->cols - 1);
        PyObject *row = row_at(r, r->off + r->y);
        if (row == NULL) {
            rc = -1;
            goto done;
        }
        Py_INCREF(row); /* (held across the call to Python below) */
        PyObject *fill = PyObject_CallMethodOneArg(r->fp, n_fill, r->st);
        PyObject *space = fill == NULL ? NULL : spaces(mn(n, r->cols - xx));
        rc = space == NULL ? -1 : append_op(row, xx, space, fill);
        Py_XDECREF(space);
        Py_XDECREF(fill);
        Py_DECREF(row);
    } else if (in_set(final, "ABCDG`d")) {
        PyObject *lrmm = PyObject_GetAttr(r->s, n_declrmm);
        if (lrmm == NULL) {
            rc = -1;
            goto done;
        }
        int on = PyObject_IsTrue(lrmm);
        Py_DECREF(lrmm);
        if (on < 0) {
            rc = -1;
            goto done;
        }
        if (on)
            goto other;
        Py_ssize_t xx = r->x < r->cols ? r->x : r->cols - 1;
        if (final == 'C')
            r->x = mn(xx + n, r->cols - 1);
        else if (final == 'D')
            r->x = mx(xx - n, 0);
        else if (final == 'G' || final == '`')
            r->x = mn(n - 1, r->cols - 1);
        else {
            r->x = xx;
            if (final == 'A')
                r->y = mx(r->y - n, r->y >= r->top ? r->top : 0);
            else if (final == 'B')
                r->y = mn(r->y + n, r->y <= r->bottom ? r->bottom : r->last);
            else
                r->y = mn(n - 1, r->last);
        }
    } else if ((final == 'S' || final == 'T') && PyList_GET_SIZE(ints) <= 1) {
        n = mn(n, r->lines);
        rc = final == 'S' ? scroll_rows(r, r->top, r->bottom, n, 1)
                          : scroll_rows(r, r->top, r->bottom, -n, 0);
    } else if ((final == 'L' || final == 'M') && r->top <= r->y && r->y <= r->bottom) {
        n = mn(n, r->lines);
        rc = scroll_rows(r, r->y, r->bottom, final == 'L' ? -n : n, 0);
        r->x = 0;
    } else {
        goto other;
    }
    goto done;
other: {
    /* Handed to the screen's own method (``_call``), named by the parser's table. */
    PyObject *fs = PyUnicode_FromOrdinal(final);
    if (fs == NULL) {
        rc = -1;
        goto done;
    }
    PyObject *entry = final == 'T' ? Py_NewRef(SD_ENTRY) : lookup(r->csi, fs);
    if (entry == NULL || (final == 'T' && PyList_GET_SIZE(ints) > 1)) {
        Py_XDECREF(entry);
        Py_DECREF(fs);
        if (PyErr_Occurred()) {
            rc = -1;
        } else {
            *end = tok->start;
            rc = 1;
        }
        goto done;
    }
    PyObject *edits = lookup(EDITS, fs);
    Py_DECREF(fs);
    PyObject *name, *arity;
    if (edits == NULL || !PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 2) {
        Py_XDECREF(edits);
        Py_DECREF(entry);
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_KeyError, "no edit class for this final");
        rc = -1;
        goto done;
    }
    name = PyTuple_GET_ITEM(entry, 0);
    arity = PyTuple_GET_ITEM(entry, 1);
    Py_ssize_t count = PyList_GET_SIZE(ints);
    if (arity != Py_None) {
        Py_ssize_t a;
        if (clamp(arity, &a) < 0) {
            Py_DECREF(edits);
            Py_DECREF(entry);
            rc = -1;
            goto done;
        }
        count = mn(count, mx(a, 0));
    }
    PyObject *argt = PyList_GetSlice(ints, 0, count);
    PyObject *argtuple = argt == NULL ? NULL : PyList_AsTuple(argt);
    Py_XDECREF(argt);
    if (argtuple == NULL) {
        Py_DECREF(edits);
        Py_DECREF(entry);
        rc = -1;
        goto done;
    }
    PyObject *res = PyObject_CallMethod(r->fp, "_call", "OOOnnOOOn", name, argtuple, edits, r->x,
                                        r->y, r->st, r->last_text, r->rows, r->off);
    Py_DECREF(argtuple);
    Py_DECREF(edits);
    Py_DECREF(entry);
    if (take_call(r, res) < 0) {
        rc = -1;
        goto done;
    }
    if (final == 'h' || final == 'l') { /* (insert mode, newline mode) */
        int lnm = contains(r->mode, LNM);
        int ok = lnm < 0 ? -1 : usable(r);
        if (ok < 0) {
            rc = -1;
            goto done;
        }
        r->lnm = lnm;
        if (!ok) {
            *end = tok->end;
            rc = 1;
        }
    }
}
done:
    Py_DECREF(ints);
    return rc;
}

/* DECSTBM (group 10), as ``TermScreen.set_margins``, then maybe the CUP after it. */
static int stbm(Run *r, const Tok *tok)
{
    PyObject *params = sub(r, tok->gs[5], tok->ge[5]);
    if (params == NULL)
        return -1;
    PyObject *got = lookup(r->stbms, params);
    if (got == NULL && !PyErr_Occurred())
        got = PyObject_CallMethod(r->fp, "_stbm", "Onn", params, r->top, r->bottom);
    Py_DECREF(params);
    if (got == NULL)
        return -1;
    int rc = 0;
    if (PyTuple_Check(got) && PyTuple_GET_SIZE(got) == 3) {
        if (PyObject_SetAttr(r->s, n_margins, PyTuple_GET_ITEM(got, 0)) < 0 ||
            clamp(PyTuple_GET_ITEM(got, 1), &r->top) < 0 ||
            clamp(PyTuple_GET_ITEM(got, 2), &r->bottom) < 0) {
            rc = -1;
        } else {
            r->x = r->y = 0;
        }
        r->full = r->top == 0 && r->bottom == r->last;
    }
    Py_DECREF(got);
    if (rc == 0 && tok->ge[10] - tok->gs[10] > 0) {
        PyObject *p = sub(r, tok->gs[10] + 2, tok->ge[10] - 1);
        if (p == NULL)
            return -1;
        rc = cup(r, p);
        Py_DECREF(p);
    }
    return rc;
}

/* A character set designated (group 17), as pyte's ``define_charset``, then maybe SGR. */
static int designate(Run *r, const Tok *tok)
{
    PyObject *code = sub(r, tok->gs[15], tok->ge[15]);
    if (code == NULL)
        return -1;
    PyObject *table = lookup(MAPS, code);
    Py_DECREF(code);
    if (table == NULL && PyErr_Occurred())
        return -1;
    if (table != NULL) {
        int g1 = ch(&r->t, tok->gs[14]) == ')';
        int rc = PyObject_SetAttr(r->s, g1 ? n_g1_charset : n_g0_charset, table);
        PyObject *cs = rc < 0 ? NULL : PyObject_GetAttr(r->s, n_charset);
        int on = cs == NULL ? -1 : PyObject_IsTrue(cs);
        Py_XDECREF(cs);
        if (on < 0) {
            Py_DECREF(table);
            return -1;
        }
        if (g1 == on)
            set_ref(&r->tr, Py_NewRef(table == LAT1_MAP ? Py_None : table));
        Py_DECREF(table);
        PyObject *g0 = PyObject_GetAttr(r->s, n_g0_charset);
        if (g0 == NULL)
            return -1;
        r->g0_ascii = g0 == LAT1_MAP;
        Py_DECREF(g0);
    }
    if (tok->gs[16] >= 0) {
        PyObject *params = sub(r, tok->gs[16], tok->ge[16]);
        if (params == NULL)
            return -1;
        int rc = sgr(r, params, 0);
        Py_DECREF(params);
        if (rc < 0)
            return -1;
    }
    r->asis = r->plain && r->tr == Py_None;
    return 0;
}

/* REP (group 9): the last character again, at most a screenful; 1 when the run ends. */
static int repeat(Run *r, const Tok *tok, PyObject **t)
{
    PyObject *ints = params_in(r, tok->gs[5], tok->ge[5], 1);
    if (ints == NULL)
        return -1;
    PyObject *c;
    Py_ssize_t len = PyUnicode_GET_LENGTH(r->last_text);
    if (len > 0)
        c = PyUnicode_Substring(r->last_text, len - 1, len);
    else
        c = PyObject_GetAttrString(r->s, "last_char");
    if (c == NULL) {
        Py_DECREF(ints);
        return -1;
    }
    int rc = 0;
    if (ints == Py_None) {
        *t = PyUnicode_New(0, 0);
        rc = *t == NULL ? -1 : 0;
    } else if (r->tr != Py_None) {
        rc = 1;
    } else {
        int narrow = contains(r->narrow, c);
        if (narrow == 0) {
            PyObject *pre = PyObject_CallMethodOneArg(r->fp, n_narrow_prefix, c);
            narrow = pre == NULL ? -1 : PyObject_IsTrue(pre);
            Py_XDECREF(pre);
        }
        Py_ssize_t n0;
        if (narrow < 0 || nth(ints, 0, &n0) < 0) {
            rc = -1;
        } else if (!narrow) {
            rc = 1;
        } else {
            *t = PySequence_Repeat(c, mn(n0 ? n0 : 1, r->cols * r->lines));
            rc = *t == NULL ? -1 : 0;
        }
    }
    Py_DECREF(c);
    Py_DECREF(ints);
    return rc;
}

/* DEC private modes (groups 12, 13), when all are quiet ones: 1 when the run ends. */
static int quiet_modes(Run *r, const Tok *tok)
{
    PyObject *ints = params_in(r, tok->gs[12], tok->ge[12], 0);
    if (ints == NULL)
        return -1;
    if (ints == Py_None) {
        Py_DECREF(ints);
        return 1;
    }
    PyObject *ok = PyObject_CallMethodOneArg(QUIET_MODES, n_issuperset, ints);
    int quiet = ok == NULL ? -1 : PyObject_IsTrue(ok);
    Py_XDECREF(ok);
    if (quiet <= 0) {
        Py_DECREF(ints);
        return quiet < 0 ? -1 : 1;
    }
    PyObject *args = PySequence_Tuple(ints);
    Py_DECREF(ints);
    if (args == NULL)
        return -1;
    PyObject *kw = Py_BuildValue("{O:O}", n_private, Py_True);
    PyObject *meth = kw == NULL ? NULL
                                : PyObject_GetAttr(r->s, ch(&r->t, tok->gs[13]) == 'h'
                                                             ? n_set_mode
                                                             : n_reset_mode);
    PyObject *res = meth == NULL ? NULL : PyObject_Call(meth, args, kw);
    Py_XDECREF(meth);
    Py_XDECREF(kw);
    Py_DECREF(args);
    if (res == NULL)
        return -1;
    Py_DECREF(res);
    int wrap = contains(r->mode, DECAWM);
    if (wrap < 0)
        return -1;
    r->wrap = wrap;
    return 0;
}

/* DECTCEM (group 11): what ``set_mode`` / ``reset_mode`` do for mode 25. */
static int dectcem(Run *r, const Tok *tok)
{
    int on = ch(&r->t, tok->gs[11]) == 'h';
    PyObject *other = PyObject_GetAttr(r->s, n_other_modes);
    if (other == NULL)
        return -1;
    int rc = PyObject_SetItem(other, DECTCEM_KEY, on ? Py_True : Py_False);
    Py_DECREF(other);
    if (rc < 0)
        return -1;
    if ((on ? PySet_Add(r->mode, DECTCEM) : PySet_Discard(r->mode, DECTCEM)) < 0)
        return -1;
    PyObject *cursor = PyObject_GetAttr(r->s, n_cursor);
    if (cursor == NULL)
        return -1;
    rc = PyObject_SetAttr(cursor, n_hidden, on ? Py_False : Py_True);
    Py_DECREF(cursor);
    return rc;
}

/* ESC 7, 8, D, E, M, =, > (group 18): 1 when the run ends, 2 when done (no line feed
 * follows), 0 when a line feed follows (IND, NEL). */
static int escape(Run *r, const Tok *tok, Py_ssize_t *end)
{
    Py_UCS4 e = ch(&r->t, tok->gs[18]);
    if (e == '=' || e == '>') {
        PyObject *res = PyObject_CallMethod(r->s, "set_keypad", "O", e == '=' ? Py_True : Py_False);
        if (res == NULL)
            return -1;
        Py_DECREF(res);
        return 2;
    }
    if (e == 'M') {
        if (r->y == r->top) {
            if (scroll_rows(r, r->top, r->bottom, -1, 0) < 0)
                return -1;
        } else if (r->y > 0) {
            r->y -= 1;
        }
        return 2;
    }
    if (e == '7' || e == '8') {
        PyObject *key = PyUnicode_FromOrdinal(e);
        PyObject *name = key == NULL ? NULL : lookup(r->escapes, key);
        Py_XDECREF(key);
        if (name == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_KeyError, "no screen method for ESC 7/8");
            return -1;
        }
        PyObject *res = PyObject_CallMethod(r->fp, "_call", "O()innOOOn", name, 0, r->x, r->y,
                                            r->st, r->last_text, r->rows, r->off);
        Py_DECREF(name);
        if (take_call(r, res) < 0)
            return -1;
        PyObject *cursor = PyObject_GetAttr(r->s, n_cursor); /* (DECRC puts a new one in place) */
        if (cursor == NULL)
            return -1;
        set_ref(&r->cursor, cursor);
        int ok = usable(r);
        if (ok < 0)
            return -1;
        if (!ok) {
            *end = tok->end;
            return 1;
        }
        if (read_margins(r) < 0 || read_charset(r) < 0)
            return -1;
        return 2;
    }
    if (e == 'E')
        r->x = 0;
    return 0;
}

/* The rarer controls (group 23): BS, HT, BEL, SO, SI; 1 when the run ends. */
static int control(Run *r, const Tok *tok, Py_ssize_t *end)
{
    Py_UCS4 c = ch(&r->t, tok->gs[23]);
    if (c == 0x08) {
        if (r->x == r->cols)
            r->x -= 1;
        r->x = mn(mx(0, r->x - 1), r->cols - 1);
        return 0;
    }
    if (c == '\t') {
        if (r->x < r->cols) {
            PyObject *stops = PyObject_GetAttr(r->s, n_tabstops);
            PyObject *it = stops == NULL ? NULL : PyObject_GetIter(stops);
            Py_XDECREF(stops);
            if (it == NULL)
                return -1;
            Py_ssize_t best = -1, v;
            PyObject *item;
            while ((item = PyIter_Next(it)) != NULL) {
                int rc = clamp(item, &v);
                Py_DECREF(item);
                if (rc < 0) {
                    Py_DECREF(it);
                    return -1;
                }
                if (v > r->x && (best < 0 || v < best))
                    best = v;
            }
            Py_DECREF(it);
            if (PyErr_Occurred())
                return -1;
            r->x = best >= 0 ? best : r->cols - 1;
            return 0;
        }
        PyObject *other = PyObject_GetAttr(r->s, n_other_modes);
        PyObject *fix = other == NULL ? NULL
                                      : PyObject_CallMethod(other, "get", "OO", MORE_FIX, Py_False);
        Py_XDECREF(other);
        int on = fix == NULL ? -1 : PyObject_IsTrue(fix);
        Py_XDECREF(fix);
        if (on < 0)
            return -1;
        if (on && r->wrap) {
            *end = tok->start; /* (a wrap first: the screen's ``tab``) */
            return 1;
        }
        return 0;
    }
    PyObject *name = c == 0x07 ? n_bell : c == 0x0e ? n_shift_out : n_shift_in;
    PyObject *res = PyObject_CallMethodNoArgs(r->s, name);
    if (res == NULL)
        return -1;
    Py_DECREF(res);
    if (c != 0x07) {
        PyObject *tr = PyObject_CallMethodNoArgs(r->fp, n_charset_m);
        if (tr == NULL)
            return -1;
        set_ref(&r->tr, tr);
        r->asis = r->plain && r->tr == Py_None;
    }
    return 0;
}

/* The run's state read from the screen (FastPath.run before its loop). */
static int begin(Run *r)
{
    PyObject *s = r->s;
    if (get_size(s, n_columns, &r->cols) < 0 || get_size(s, n_lines, &r->lines) < 0)
        return -1;
    r->last = r->lines - 1;
    if ((r->cursor = PyObject_GetAttr(s, n_cursor)) == NULL)
        return -1;
    if (get_size(r->cursor, n_x, &r->x) < 0 || get_size(r->cursor, n_y, &r->y) < 0)
        return -1;
    PyObject *attrs = PyObject_GetAttr(r->cursor, n_attrs);
    if (attrs == NULL)
        return -1;
    r->st = PyObject_CallMethodOneArg(r->fp, n_state, attrs);
    Py_DECREF(attrs);
    if (r->st == NULL || (r->mode = PyObject_GetAttr(s, n_mode)) == NULL)
        return -1;
    if (!PyAnySet_Check(r->mode)) {
        PyErr_SetString(PyExc_TypeError, "screen.mode: expected a set");
        return -1;
    }
    if ((r->wrap = contains(r->mode, DECAWM)) < 0 || (r->lnm = contains(r->mode, LNM)) < 0)
        return -1;
    if (read_margins(r) < 0)
        return -1;
    PyObject *iso = PyObject_GetAttr(s, n_iso_protection);
    if (iso == NULL || (r->iso = PyObject_IsTrue(iso)) < 0) {
        Py_XDECREF(iso);
        return -1;
    }
    Py_DECREF(iso);
    r->plain = PyUnicode_IS_ASCII(r->data);
    if (read_charset(r) < 0)
        return -1;
    if ((r->stored = PyObject_GetAttr(s, n_stored_line)) == NULL ||
        (r->dflt = PyObject_GetAttr(s, n_default_char)) == NULL ||
        (r->rows = PyObject_CallMethodNoArgs(r->fp, n_begin)) == NULL ||
        (r->narrow = PyObject_GetAttr(r->fp, n_narrow)) == NULL ||
        (r->pints = PyObject_GetAttr(r->fp, n_ints)) == NULL ||
        (r->cups = PyObject_GetAttr(r->fp, n_cups)) == NULL ||
        (r->stbms = PyObject_GetAttr(r->fp, n_stbms)) == NULL ||
        (r->csi = PyObject_GetAttr(r->fp, n_csi)) == NULL ||
        (r->escapes = PyObject_GetAttr(r->fp, n_escapes)) == NULL)
        return -1;
    if (!PyList_Check(r->rows) || !PyDict_Check(r->pints) || !PyDict_Check(r->cups) ||
        !PyDict_Check(r->stbms) || !PyDict_Check(r->csi) || !PyDict_Check(r->escapes) ||
        !PyAnySet_Check(r->narrow)) {
        PyErr_SetString(PyExc_TypeError, "fast path: unexpected state types");
        return -1;
    }
    if (get_size(r->fp, n_off, &r->off) < 0)
        return -1;
    r->last_text = PyUnicode_New(0, 0);
    return r->last_text == NULL ? -1 : 0;
}

/* Row indexes used below must be inside the pending rows; they are as long as the Python
 * helpers keep their promises, and this says so rather than read out of bounds. */
static int rows_cover(Run *r)
{
    Py_ssize_t a = r->off + r->y;
    if (a < 0 || a >= PyList_GET_SIZE(r->rows) || r->y < 0 || r->y > r->last) {
        PyErr_SetString(PyExc_IndexError, "fast path: the cursor is outside the pending rows");
        return -1;
    }
    return 0;
}

/* One token: 0 when done, 1 when the run ends before or after it (``*end`` set), -1 on
 * error. */
static int step(Run *r, const Tok *tok, Py_ssize_t *end)
{
    int k = tok->k, rc;
    if (rows_cover(r) < 0)
        return -1;
    if (k <= 6 || k == 17 || k == 9) {
        PyObject *t = NULL;
        Py_ssize_t tg = k == 4 || k == 6 || k == 17 ? k : 1; /* (the text's group) */
        if (k == 4 || k == 6) {
            PyObject *params = sub(r, tok->gs[k - 1], tok->ge[k - 1]);
            if (params == NULL)
                return -1;
            rc = k == 4 ? sgr(r, params, 1) : cup(r, params);
            Py_DECREF(params);
            if (rc < 0 || rows_cover(r) < 0)
                return -1;
        } else if (k == 17) {
            if (designate(r, tok) < 0)
                return -1;
        } else if (k == 9) {
            rc = repeat(r, tok, &t);
            if (rc != 0) {
                *end = tok->start;
                return rc;
            }
            tg = -1;
        }
        if (t == NULL && (t = sub(r, tok->gs[tg], tok->ge[tg])) == NULL)
            return -1;
        Py_ssize_t stop;
        rc = text(r, t, tg >= 0 ? tok->gs[tg] : tok->start, &stop);
        if (rc != 0) {
            *end = stop;
            return rc;
        }
        if (k == 2) { /* CR LF after the text */
            r->x = 0;
            return line_feed(r);
        }
        return 0;
    }
    if (k < 14) {
        if (k == 10)
            return stbm(r, tok);
        if (k == 8 || k == 7)
            return csi_edit(r, tok, end);
        if (k == 11)
            return dectcem(r, tok);
        rc = quiet_modes(r, tok);
        if (rc == 1)
            *end = tok->start;
        return rc;
    }
    if (k == 19 || k == 21 || k == 18) {
        if (k == 18) {
            rc = escape(r, tok, end);
            if (rc != 0)
                return rc == 2 ? 0 : rc;
        } else if (k == 19 || r->lnm) {
            r->x = 0;
        }
        return line_feed(r);
    }
    if (k == 20) {
        r->x = 0;
        return 0;
    }
    if (k == 23)
        return control(r, tok, end);
    return 0; /* (22: ignored controls) */
}

/* A token that failed is dropped alone (as FastPath.run's "except"): logged through
 * ``FastPath._dropped``, and the run ends after it (before the text that follows an SGR,
 * a CUP or a character set, which is a token of its own): where it ends, or -1 (an error
 * set) when the logging itself failed. */
static Py_ssize_t dropped(Run *r, const Tok *tok)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL)
        PyException_SetTraceback(value, tb);
    PyObject *res = PyObject_CallMethodOneArg(r->fp, n_dropped, value ? value : Py_None);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    if (res == NULL) /* (the logging failed: that propagates, as from Python's "except") */
        return -1;
    Py_DECREF(res);
    int k = tok->k;
    return k == 4 || k == 6 || k == 17 ? tok->gs[k] : tok->end;
}

static PyObject *run(PyObject *self, PyObject *args)
{
    Run r = {0};
    Py_ssize_t start, end, pos;
    Tok tok;
    if (!PyArg_ParseTuple(args, "OUn", &r.fp, &r.data, &start) || text_of(r.data, &r.t) < 0)
        return NULL;
    if (start < 0 || !scan_at(&r.t, start, &tok))
        return PyLong_FromSsize_t(start);
    if ((r.s = PyObject_GetAttr(r.fp, n_screen)) == NULL)
        return NULL;
    if (begin(&r) < 0)
        goto error;
    end = start;
    pos = start;
    for (;;) {
        int rc = step(&r, &tok, &end);
        if (rc < 0) {
            if (!PyErr_ExceptionMatches(PyExc_Exception))
                goto error;
            if ((end = dropped(&r, &tok)) < 0)
                goto error;
            break;
        }
        if (rc > 0)
            break;
        pos = tok.end;
        if (!scan_at(&r.t, pos, &tok)) {
            end = pos;
            break;
        }
    }
    PyObject *res = PyObject_CallMethod(r.fp, "_finish", "OnnOOOnn", r.cursor, r.x, r.y, r.st,
                                        r.last_text, r.rows, r.off, end - start);
    if (res == NULL)
        goto error;
    Py_DECREF(res);
    run_clear(&r);
    Py_DECREF(r.s);
    return PyLong_FromSsize_t(end);
error:
    run_clear(&r);
    Py_DECREF(r.s);
    return NULL;
}

/* ---- building a pending row (PendingRows._build) ---------------------------------------- */

/* An operation of a pending row: (column, text, cells), checked. */
static int op_of(PyObject *op, Py_ssize_t *x, PyObject **text, PyObject **cells)
{
    if (!PyTuple_Check(op) || PyTuple_GET_SIZE(op) != 3 || !PyUnicode_Check(PyTuple_GET_ITEM(op, 1))) {
        PyErr_SetString(PyExc_TypeError, "a pending row's operation: expected (x, text, cells)");
        return -1;
    }
    *text = PyTuple_GET_ITEM(op, 1);
    *cells = PyTuple_GET_ITEM(op, 2);
    return clamp(PyTuple_GET_ITEM(op, 0), x);
}

/* ``cells.run(text)``, read from its cache (``cells.runs``) first: a new reference. */
static PyObject *cells_run(PyObject *cells, PyObject *text, int cached)
{
    if (cached) {
        PyObject *runs = PyObject_GetAttr(cells, n_runs);
        if (runs == NULL)
            return NULL;
        PyObject *run = PyDict_Check(runs) ? lookup(runs, text) : NULL;
        Py_DECREF(runs);
        if (run != NULL || PyErr_Occurred())
            return run;
    }
    PyObject *run = PyObject_CallMethodOneArg(cells, n_run, text);
    if (run != NULL && !PyTuple_Check(run)) {
        Py_DECREF(run);
        PyErr_SetString(PyExc_TypeError, "Attrs.run: expected a tuple");
        return NULL;
    }
    return run;
}

static int put_cell(PyObject *line, Py_ssize_t x, PyObject *cell)
{
    PyObject *key = PyLong_FromSsize_t(x);
    if (key == NULL)
        return -1;
    int rc = PyDict_SetItem(line, key, cell);
    Py_DECREF(key);
    return rc;
}

/* The row's operations laid out in a buffer of ``columns`` cells, then written into
 * ``line`` left to right.  Later operations win, so they are laid out last-first and each
 * fills only the cells still empty; one wholly covered already costs no lookup (a full-screen
 * program rewrites the same fields frame after frame between two settles).  ``row`` is a
 * snapshot (a tuple: Python code run below cannot change it).  1 when an operation does not
 * fit in the columns (nothing written: the caller builds it the Python way), 0 when done,
 * -1 on error. */
static int lay_out(PyObject *row, Py_ssize_t columns, PyObject *line)
{
    Py_ssize_t n = PyTuple_GET_SIZE(row), x, i, j, len;
    PyObject *text, *cells;
    for (i = 1; i < n; i++) {
        if (op_of(PyTuple_GET_ITEM(row, i), &x, &text, &cells) < 0)
            return -1;
        if (x < 0 || x + PyUnicode_GET_LENGTH(text) > columns)
            return 1;
    }
    PyObject **buf = PyMem_Calloc(columns ? columns : 1, sizeof(PyObject *));
    if (buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    int rc = 0;
    for (i = n - 1; i >= 1 && rc == 0; i--) {
        if (op_of(PyTuple_GET_ITEM(row, i), &x, &text, &cells) < 0) {
            rc = -1;
            break;
        }
        len = PyUnicode_GET_LENGTH(text); /* (x + len <= columns: checked above) */
        for (j = 0; j < len && buf[x + j] != NULL; j++)
            ;
        if (j == len) /* (covered by later operations) */
            continue;
        PyObject *run = cells_run(cells, text, 1);
        if (run == NULL) {
            rc = -1;
        } else {
            Py_ssize_t m = mn(PyTuple_GET_SIZE(run), len);
            for (j = 0; j < m; j++)
                if (buf[x + j] == NULL)
                    buf[x + j] = Py_NewRef(PyTuple_GET_ITEM(run, j));
            Py_DECREF(run);
        }
    }
    for (x = 0; x < columns; x++) {
        if (rc == 0 && buf[x] != NULL) {
            int truth = PyObject_IsTrue(buf[x]);
            rc = truth < 0 ? -1 : truth ? put_cell(line, x, buf[x]) : 0;
        }
        Py_XDECREF(buf[x]);
    }
    PyMem_Free(buf);
    return rc;
}

/* A few operations straight into the line, in order (``row``: a snapshot, as above). */
static int write_ops(PyObject *row, PyObject *line)
{
    Py_ssize_t x;
    PyObject *text, *cells;
    for (Py_ssize_t i = 1; i < PyTuple_GET_SIZE(row); i++) {
        if (op_of(PyTuple_GET_ITEM(row, i), &x, &text, &cells) < 0)
            return -1;
        int rc = 0;
        if (PyUnicode_GET_LENGTH(text) == 1) {
            PyObject *cell = PyObject_GetItem(cells, text);
            rc = cell == NULL ? -1 : put_cell(line, x, cell);
            Py_XDECREF(cell);
        } else {
            PyObject *run = cells_run(cells, text, 0);
            if (run == NULL)
                return -1;
            Py_ssize_t m = mn(PyTuple_GET_SIZE(run), PyUnicode_GET_LENGTH(text));
            for (Py_ssize_t j = 0; j < m && rc == 0; j++)
                rc = put_cell(line, x + j, PyTuple_GET_ITEM(run, j));
            Py_DECREF(run);
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

static PyObject *build(PyObject *self, PyObject *args)
{
    PyObject *list, *line_class;
    Py_ssize_t columns;
    if (!PyArg_ParseTuple(args, "nOO!", &columns, &line_class, &PyList_Type, &list))
        return NULL;
    if (PyList_GET_SIZE(list) < 1 || columns < 0) {
        PyErr_SetString(PyExc_ValueError, "build: an empty row");
        return NULL;
    }
    PyObject *row = PyList_AsTuple(list); /* (the operations held while Python code runs) */
    if (row == NULL)
        return NULL;
    PyObject *base = PyTuple_GET_ITEM(row, 0);
    PyObject *line = PyDict_Check(base) ? Py_NewRef(base) : PyObject_CallOneArg(line_class, base);
    int rc = -1;
    if (line != NULL && PyDict_Check(line))
        rc = PyTuple_GET_SIZE(row) <= 5 ? write_ops(row, line) : lay_out(row, columns, line);
    else if (line != NULL)
        PyErr_SetString(PyExc_TypeError, "build: the line is not a dict");
    Py_DECREF(row);
    if (rc < 0) {
        Py_XDECREF(line);
        return NULL;
    }
    if (rc > 0) {
        Py_DECREF(line);
        Py_RETURN_NONE;
    }
    return line;
}

static PyObject *configure(PyObject *self, PyObject *args)
{
    PyObject *v[10];
    if (!PyArg_ParseTuple(args, "OOOOOOOOOO", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                          &v[7], &v[8], &v[9]))
        return NULL;
    PyObject **slots[10] = {&LAT1_MAP, &MAPS, &DECAWM, &LNM, &DECTCEM, &DECTCEM_KEY,
                            &QUIET_MODES, &MORE_FIX, &SD_ENTRY, &EDITS};
    if (!PyDict_Check(v[1]) || !PyDict_Check(v[9])) {
        PyErr_SetString(PyExc_TypeError, "configure: MAPS and EDITS must be dicts");
        return NULL;
    }
    for (int i = 0; i < 10; i++) {
        Py_XSETREF(*slots[i], Py_NewRef(v[i]));
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS,
     "scan(text, pos) -> (kind, end, [(group, start, end), ...]) or None: the token at pos."},
    {"run", run, METH_VARARGS, "run(fastpath, text, start) -> end: FastPath.run, compiled."},
    {"build", build, METH_VARARGS,
     "build(columns, line_class, row) -> the line dict of a pending row (or None: build it "
     "in Python: an operation does not fit)."},
    {"configure", configure, METH_VARARGS, "configure(...): the Python path's constants."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastloop",
    "The fast path's token loop, compiled (optional; vncmux.console.fastpath is the reference).",
    -1, methods,
};

#define NAME(var, text)                                                                        \
    if ((var = PyUnicode_InternFromString(text)) == NULL)                                     \
    return NULL

PyMODINIT_FUNC PyInit__fastloop(void)
{
    NAME(n_screen, "screen");
    NAME(n_columns, "columns");
    NAME(n_lines, "lines");
    NAME(n_cursor, "cursor");
    NAME(n_x, "x");
    NAME(n_y, "y");
    NAME(n_attrs, "attrs");
    NAME(n_mode, "mode");
    NAME(n_margins, "margins");
    NAME(n_iso_protection, "iso_protection");
    NAME(n_g0_charset, "g0_charset");
    NAME(n_g1_charset, "g1_charset");
    NAME(n_charset, "charset");
    NAME(n_stored_line, "stored_line");
    NAME(n_default_char, "default_char");
    NAME(n_last_char, "last_char");
    NAME(n_declrmm, "declrmm");
    NAME(n_tabstops, "tabstops");
    NAME(n_other_modes, "other_modes");
    NAME(n_trans, "trans");
    NAME(n_hidden, "hidden");
    NAME(n_state, "_state");
    NAME(n_after_sgr, "_after_sgr");
    NAME(n_cup, "_cup");
    NAME(n_stbm, "_stbm");
    NAME(n_params, "_params");
    NAME(n_wrapped, "_wrapped");
    NAME(n_mixed, "_mixed");
    NAME(n_narrow_prefix, "_narrow_prefix");
    NAME(n_erase, "_erase");
    NAME(n_fill, "_fill");
    NAME(n_base, "_base");
    NAME(n_scroll, "_scroll");
    NAME(n_call, "_call");
    NAME(n_charset_m, "_charset");
    NAME(n_usable, "usable");
    NAME(n_begin, "_begin");
    NAME(n_finish, "_finish");
    NAME(n_set_mode, "set_mode");
    NAME(n_reset_mode, "reset_mode");
    NAME(n_set_keypad, "set_keypad");
    NAME(n_bell, "bell");
    NAME(n_shift_out, "shift_out");
    NAME(n_shift_in, "shift_in");
    NAME(n_dropped, "_dropped");
    NAME(n_csi, "_csi");
    NAME(n_escapes, "_escapes");
    NAME(n_ints, "_ints");
    NAME(n_cups, "_cups");
    NAME(n_stbms, "_stbms");
    NAME(n_narrow, "_narrow");
    NAME(n_off, "_off");
    NAME(n_translate, "translate");
    NAME(n_issuperset, "issuperset");
    NAME(n_private, "private");
    NAME(n_runs, "runs");
    NAME(n_run, "run");
    NAME(n_fill_attr, "fill");
    return PyModule_Create(&module);
}
