/* The compiled token loop's shared declarations (module.c says what the extension is). */

#ifndef VNCMUX_FASTLOOP_H
#define VNCMUX_FASTLOOP_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* What compiled.py hands over once (configure()): the Python path's own constants. */
extern PyObject *LAT1_MAP, *MAPS, *DECAWM, *LNM, *DECTCEM, *DECTCEM_KEY, *QUIET_MODES,
    *MORE_FIX, *SD_ENTRY, *EDITS;

/* Interned names. */
extern PyObject *n_screen, *n_columns, *n_lines, *n_cursor, *n_x, *n_y, *n_attrs, *n_mode,
    *n_margins, *n_iso_protection, *n_g0_charset, *n_g1_charset, *n_charset, *n_stored_line,
    *n_default_char, *n_last_char, *n_declrmm, *n_tabstops, *n_other_modes, *n_trans,
    *n_hidden, *n_state, *n_after_sgr, *n_cup, *n_params, *n_narrow_prefix, *n_fill,
    *n_charset_m, *n_usable, *n_begin, *n_set_mode, *n_reset_mode, *n_bell, *n_shift_out,
    *n_shift_in, *n_dropped, *n_csi, *n_escapes, *n_ints, *n_cups, *n_stbms, *n_narrow,
    *n_off, *n_translate, *n_issuperset, *n_private, *n_runs, *n_run, *n_fill_attr;

#define BIG (PY_SSIZE_T_MAX / 4) /* integer parameters are clamped to +-BIG (beyond any size) */

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

static inline int in_set(Py_UCS4 c, const char *set)
{
    return c < 128 && c != 0 && strchr(set, (int)c) != NULL;
}

typedef struct {
    PyObject *fp, *s, *data;
    Text t;
    Py_ssize_t cols, lines, last, x, y, off, top, bottom;
    int wrap, lnm, full, iso, g0_ascii, plain, asis;
    /* owned references */
    PyObject *cursor, *st, *rows, *tr, *last_text, *mode, *stored, *dflt, *narrow, *pints,
        *cups, *stbms, *csi, *escapes;
} Run;

static inline void set_ref(PyObject **slot, PyObject *value) /* steals ``value`` */
{
    PyObject *old = *slot;
    *slot = value;
    Py_XDECREF(old);
}

static inline Py_ssize_t mn(Py_ssize_t a, Py_ssize_t b) { return a < b ? a : b; }
static inline Py_ssize_t mx(Py_ssize_t a, Py_ssize_t b) { return a > b ? a : b; }

/* Shared between the files. */
PyObject *build(PyObject *self, PyObject *args);
PyObject *lookup(PyObject *dict, PyObject *key);
PyObject *results(PyObject *res, Py_ssize_t n, const char *what);
PyObject *row_at(Run *r, Py_ssize_t a);
PyObject *run(PyObject *self, PyObject *args);
PyObject *scan(PyObject *self, PyObject *args);
PyObject *spaces(Py_ssize_t count);
PyObject *sub(Run *r, Py_ssize_t s, Py_ssize_t e);
int append_op(PyObject *row, Py_ssize_t x, PyObject *text, PyObject *cells);
int clamp(PyObject *o, Py_ssize_t *out);
int contains(PyObject *set, PyObject *key);
int control(Run *r, const Tok *tok, Py_ssize_t *end);
int csi_edit(Run *r, const Tok *tok, Py_ssize_t *end);
int cup(Run *r, PyObject *params);
int dectcem(Run *r, const Tok *tok);
int designate(Run *r, const Tok *tok);
int erase(Run *r, Py_UCS4 final, Py_ssize_t how);
int escape(Run *r, const Tok *tok, Py_ssize_t *end);
int get_size(PyObject *o, PyObject *name, Py_ssize_t *out);
int line_feed(Run *r);
int nth(PyObject *ints, Py_ssize_t i, Py_ssize_t *out);
int quiet_modes(Run *r, const Tok *tok);
int read_charset(Run *r);
int read_margins(Run *r);
int repeat(Run *r, const Tok *tok, PyObject **t);
int scan_at(const Text *t, Py_ssize_t pos, Tok *tok);
int scroll_rows(Run *r, Py_ssize_t top, Py_ssize_t bottom, Py_ssize_t count, int off_top);
int sgr(Run *r, PyObject *params, int set_asis);
int stbm(Run *r, const Tok *tok);
int take_rows(Run *r, PyObject *rows);
int text(Run *r, PyObject *t, Py_ssize_t text_start, Py_ssize_t *stop);
int text_of(PyObject *data, Text *t);
int usable(Run *r);
int wrapped(Run *r, PyObject *text);
void run_clear(Run *r);

#endif
