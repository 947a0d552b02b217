/* The run's state and the pending rows: reading Python values safely, rows made from
 * the stored lines, text appended or wrapped, line feeds, ED/EL. */

#include "fastloop.h"

void run_clear(Run *r)
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

/* A Python int as a Py_ssize_t clamped to +-BIG; -1 with an error set when it is not one. */
int clamp(PyObject *o, Py_ssize_t *out)
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

int get_size(PyObject *o, PyObject *name, Py_ssize_t *out)
{
    PyObject *v = PyObject_GetAttr(o, name);
    if (v == NULL)
        return -1;
    int rc = clamp(v, out);
    Py_DECREF(v);
    return rc;
}

/* ``ints[i] if len(ints) > i else 0`` (a parameter list of Python ints). */
int nth(PyObject *ints, Py_ssize_t i, Py_ssize_t *out)
{
    if (PyList_GET_SIZE(ints) <= i) {
        *out = 0;
        return 0;
    }
    return clamp(PyList_GET_ITEM(ints, i), out);
}

PyObject *sub(Run *r, Py_ssize_t s, Py_ssize_t e)
{
    return PyUnicode_Substring(r->data, s, e);
}

/* A dict lookup that returns a new reference, or NULL with no error when absent. */
PyObject *lookup(PyObject *dict, PyObject *key)
{
    PyObject *v = PyDict_GetItemWithError(dict, key);
    Py_XINCREF(v);
    return v;
}

/* Pending row ``a``: the row list, made from its stored line (or a fresh one) when it was
 * None (the original row).  A borrowed reference. */
PyObject *row_at(Run *r, Py_ssize_t a)
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
int append_op(PyObject *row, Py_ssize_t x, PyObject *text, PyObject *cells)
{
    PyObject *op = Py_BuildValue("(nOO)", x, text, cells);
    if (op == NULL)
        return -1;
    int rc = PyList_Append(row, op);
    Py_DECREF(op);
    return rc;
}

/* The pending rows a helper returned (steals ``rows``): a list, or a TypeError. */
int take_rows(Run *r, PyObject *rows)
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
int scroll_rows(Run *r, Py_ssize_t top, Py_ssize_t bottom, Py_ssize_t count, int off_top)
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
int line_feed(Run *r)
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

/* ``res`` (stolen) when it is a tuple of ``n`` values, as the helper ``what`` promises;
 * else NULL with a TypeError (or the helper's own error, ``res`` NULL). */
PyObject *results(PyObject *res, Py_ssize_t n, const char *what)
{
    if (res != NULL && (!PyTuple_Check(res) || PyTuple_GET_SIZE(res) != n)) {
        Py_DECREF(res);
        PyErr_Format(PyExc_TypeError, "%s: expected %zd values", what, n);
        return NULL;
    }
    return res;
}

/* What ``_wrapped`` and ``_mixed`` return (stolen), x, y, off and one more: the cursor and
 * scroll count taken, the last value returned (a new reference), or NULL on error. */
static PyObject *moved(Run *r, PyObject *res, const char *what)
{
    res = results(res, 4, what);
    if (res == NULL)
        return NULL;
    PyObject *last = NULL;
    if (clamp(PyTuple_GET_ITEM(res, 0), &r->x) == 0 && clamp(PyTuple_GET_ITEM(res, 1), &r->y) == 0 &&
        clamp(PyTuple_GET_ITEM(res, 2), &r->off) == 0)
        last = Py_NewRef(PyTuple_GET_ITEM(res, 3));
    Py_DECREF(res);
    return last;
}

/* ``x, y, off, rows = self._wrapped(t, x, y, off, rows, st, wrap, full)`` */
int wrapped(Run *r, PyObject *text)
{
    PyObject *res = PyObject_CallMethod(r->fp, "_wrapped", "OnnnOOOO", text, r->x, r->y, r->off,
                                        r->rows, r->st, r->wrap ? Py_True : Py_False,
                                        r->full ? Py_True : Py_False);
    return take_rows(r, moved(r, res, "_wrapped"));
}

int contains(PyObject *set, PyObject *key)
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
int text(Run *r, PyObject *t, Py_ssize_t text_start, Py_ssize_t *stop)
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
            PyObject *count = moved(r, res, "_mixed");
            Py_ssize_t used;
            int bad = count == NULL || clamp(count, &used) < 0;
            Py_XDECREF(count);
            if (bad)
                goto fail;
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
PyObject *spaces(Py_ssize_t count)
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
int erase(Run *r, Py_UCS4 final, Py_ssize_t how)
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
