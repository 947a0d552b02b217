/* The scanner: the tokens of fasttokens.TOKEN recognised by hand, and scan() for the
 * tests that hold it to the pattern. */

#include "fastloop.h"

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

/* A token of kind ``k`` that ends with the text after its sequence (SGR, CUP, a character
 * set): that text (``_T*`` from ``from``, maybe empty) is its group ``k``.  Returns 1. */
static int then_text(const Text *t, Tok *tok, int k, Py_ssize_t from)
{
    Py_ssize_t e = text_end(t, from);
    group(tok, k, from, e);
    tok->k = k;
    tok->end = e;
    return 1;
}

/* The token at ``pos``: 1 (``tok`` filled in) or 0 (no token starts there). */
int scan_at(const Text *t, Py_ssize_t pos, Tok *tok)
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
                return then_text(t, tok, 4, j + 1);
            }
            j = params_end(t, i);
            Py_UCS4 f = ch(t, j);
            if (f == 'H') {
                group(tok, 5, i, j);
                return then_text(t, tok, 6, j + 1);
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
            return then_text(t, tok, 17, tp);
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

int text_of(PyObject *data, Text *t)
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

PyObject *scan(PyObject *self, PyObject *args)
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
