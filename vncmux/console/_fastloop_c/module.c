/* The fast path's token loop, compiled: an optional accelerator of FastPath.run and
 * PendingRows._build (vncmux/console/fastpath.py and fastrows.py, the reference: this
 * extension does what they do, token for token, and the differential tests run every
 * fast-path test on both).
 *
 *   scan.c     the tokens of fasttokens.TOKEN, recognised by hand (the same kinds, numbered
 *              by the pattern's groups, and the same spans; tests/unit/test_fastloop.py
 *              holds it to the pattern);
 *   run.c      the loop: the state read from the screen, one token at a time, handed back;
 *   tokens.c   what each kind of token does: inline where the Python loop is inline, the
 *              same Python method where it hands over (a cache miss, a screen method);
 *   pending.c  the pending rows: rows from the stored lines, text, line feeds, ED/EL;
 *   build.c    a pending row built into its line dict;
 *   module.c   (here) the constants fastpath hands over, the names, the module.
 *
 * Only the CPython API touches Python objects, every read of the text is bounded by its
 * length, and every failure of a call ends the run as the Python loop's "except" does.
 */

#include "fastloop.h"

/* What compiled.py hands over once (configure()): the Python path's own constants. */
PyObject *LAT1_MAP, *MAPS, *DECAWM, *LNM, *DECTCEM, *DECTCEM_KEY, *QUIET_MODES,
    *MORE_FIX, *SD_ENTRY, *EDITS;

/* Interned names. */
PyObject *n_screen, *n_columns, *n_lines, *n_cursor, *n_x, *n_y, *n_attrs, *n_mode,
    *n_margins, *n_iso_protection, *n_g0_charset, *n_g1_charset, *n_charset, *n_stored_line,
    *n_default_char, *n_last_char, *n_declrmm, *n_tabstops, *n_other_modes, *n_trans,
    *n_hidden, *n_state, *n_after_sgr, *n_cup, *n_params, *n_narrow_prefix, *n_fill,
    *n_charset_m, *n_usable, *n_begin, *n_set_mode, *n_reset_mode, *n_bell, *n_shift_out,
    *n_shift_in, *n_dropped, *n_csi, *n_escapes, *n_ints, *n_cups, *n_stbms, *n_narrow,
    *n_off, *n_translate, *n_issuperset, *n_private, *n_runs, *n_run, *n_fill_attr;

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
    NAME(n_params, "_params");
    NAME(n_narrow_prefix, "_narrow_prefix");
    NAME(n_fill, "_fill");
    NAME(n_charset_m, "_charset");
    NAME(n_usable, "usable");
    NAME(n_begin, "_begin");
    NAME(n_set_mode, "set_mode");
    NAME(n_reset_mode, "reset_mode");
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
