/* Building a pending row into its line dict (PendingRows._build). */

#include "fastloop.h"

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

PyObject *build(PyObject *self, PyObject *args)
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
