/* What each kind of token does (FastPath.run's branches): SGR, CUP, CSI edits and moves,
 * DECSTBM, character sets, REP, modes, ESC sequences, the rarer controls. */

#include "fastloop.h"

/* The attribute set SGR ``params`` lead to from ``st`` (its transition table, else
 * ``_after_sgr``); then an "ESC ( B" among them designates ASCII as G0. */
int sgr(Run *r, PyObject *params, int set_asis)
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
int cup(Run *r, PyObject *params)
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
    if ((res = results(res, 6, "_call")) == NULL)
        return -1;
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

int usable(Run *r)
{
    PyObject *u = PyObject_CallMethodNoArgs(r->fp, n_usable);
    if (u == NULL)
        return -1;
    int ok = PyObject_IsTrue(u);
    Py_DECREF(u);
    return ok;
}

int read_margins(Run *r)
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

int read_charset(Run *r)
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

/* What a CSI token of group 7 or 8 does (FastPath.run's branch of the same name): 1 when
 * the run ends (``*end`` set), 0 when done, -1 on error. */
int csi_edit(Run *r, const Tok *tok, Py_ssize_t *end)
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
int stbm(Run *r, const Tok *tok)
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
int designate(Run *r, const Tok *tok)
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
int repeat(Run *r, const Tok *tok, PyObject **t)
{
    PyObject *ints = params_in(r, tok->gs[5], tok->ge[5], 1);
    if (ints == NULL)
        return -1;
    PyObject *c;
    Py_ssize_t len = PyUnicode_GET_LENGTH(r->last_text);
    if (len > 0)
        c = PyUnicode_Substring(r->last_text, len - 1, len);
    else
        c = PyObject_GetAttr(r->s, n_last_char);
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
int quiet_modes(Run *r, const Tok *tok)
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
int dectcem(Run *r, const Tok *tok)
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
int escape(Run *r, const Tok *tok, Py_ssize_t *end)
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
int control(Run *r, const Tok *tok, Py_ssize_t *end)
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
