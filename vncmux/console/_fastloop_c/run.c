/* The run: the state read from the screen, one token at a time, a failed token dropped,
 * the state handed back (FastPath.run). */

#include "fastloop.h"

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

PyObject *run(PyObject *self, PyObject *args)
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
