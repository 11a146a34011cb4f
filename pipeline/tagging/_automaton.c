/* pipeline.tagging._automaton: the tagger's keyword scan as one compiled Aho-Corasick DFA.

   Automaton(keys, values, fold) builds a dense DFA over the keys' bytes. Every text byte goes through the
   256-byte `fold` table first (the tagger passes its normalization, ASCII_LOWER_TO_SPACE), so the scan reads a
   story's case-kept bytes directly. scan(text, start=0, end=len(text)) returns every match, overlapping ones
   included, as (offset of the key's last byte, values[key]), ordered by that offset and, at one offset, longest
   key first: the order of ahocorasick_rs's overlapping search, which stays the pure-Python fallback.
   Bytes that occur in no key share one class, so the table has (states x classes) entries, not x 256. Each
   row ends with two more entries: the key that ends at the state and its output link (ROW_KEY, ROW_LINK), so a
   match is resolved from the row offset the scan holds, with no division. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_automaton.h"

/* a row's entries after its nclasses transitions: the key that ends at the state (or -1), and the row offset of
   the nearest proper suffix state where a key ends (0: none) */
#define ROW_KEY 0
#define ROW_LINK 1
#define ROW_EXTRA 2

typedef struct {
    PyObject_HEAD
    int32_t *delta;  /* nstates rows of nclasses + ROW_EXTRA entries; a transition is the next state's row
                        offset (state x (nclasses + ROW_EXTRA)); while building, nclasses per state only */
    int32_t *key_of; /* build only: per state, the key that ends there, or -1 */
    int32_t *link;   /* build only: per state, the nearest proper suffix state where a key ends (0: none) */
    uint8_t *emits;  /* build only: a key ends at the state or at one of its suffix states */
    PyObject *values;
    Py_ssize_t nkeys;
    int32_t nstates;
    int32_t nclasses;
    int32_t longest; /* bytes of the longest key */
    int32_t first_emitting; /* row offset of the first state that emits: states are numbered so they come last */
    uint16_t cls[256]; /* text byte -> class, after folding */
} Automaton;

static void
automaton_free_tables(Automaton *self)
{
    PyMem_Free(self->delta);
    PyMem_Free(self->key_of);
    PyMem_Free(self->link);
    PyMem_Free(self->emits);
    self->delta = NULL;
    self->key_of = NULL;
    self->link = NULL;
    self->emits = NULL;
}

static void
automaton_dealloc(Automaton *self)
{
    automaton_free_tables(self);
    Py_CLEAR(self->values);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Number the states that emit last (so the scan tells them by one comparison) and store transitions as the
   next state's row offset (no multiplication in the scan's dependency chain), each row followed by its
   ROW_EXTRA entries. Frees the build-only per-state tables. */
static int
renumber(Automaton *self, int32_t nstates, int32_t nclasses)
{
    const int32_t stride = nclasses + ROW_EXTRA;
    int32_t *order = PyMem_New(int32_t, nstates); /* old state -> new state */
    int32_t *delta = PyMem_New(int32_t, (Py_ssize_t)nstates * stride);
    if (!order || !delta) {
        PyMem_Free(order);
        PyMem_Free(delta);
        PyErr_NoMemory();
        return -1;
    }
    int32_t next = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int32_t s = 0; s < nstates; s++) {
            if (self->emits[s] == pass) {
                order[s] = next++;
            }
        }
    }
    int32_t first = nstates;
    for (int32_t s = 0; s < nstates; s++) {
        int32_t n = order[s];
        if (self->emits[s] && n < first) {
            first = n;
        }
        int32_t *row = &delta[(Py_ssize_t)n * stride];
        for (int32_t c = 0; c < nclasses; c++) {
            row[c] = order[self->delta[(Py_ssize_t)s * nclasses + c]] * stride;
        }
        row[nclasses + ROW_KEY] = self->key_of[s];
        row[nclasses + ROW_LINK] = order[self->link[s]] * stride; /* the root (no link) stays state 0 */
    }
    PyMem_Free(order);
    automaton_free_tables(self);
    self->delta = delta;
    self->first_emitting = first * stride;
    return 0;
}

static int
automaton_init(Automaton *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"keys", "values", "fold", NULL};
    PyObject *keys_arg, *values_arg;
    Py_buffer fold;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOy*", kwlist, &keys_arg, &values_arg, &fold)) {
        return -1;
    }
    PyObject *keys = NULL, *values = NULL;
    int32_t *fail = NULL, *queue = NULL;
    int ok = -1;
    if (fold.len != 256) {
        PyErr_SetString(PyExc_ValueError, "fold must be 256 bytes");
        goto done;
    }
    keys = PySequence_Tuple(keys_arg);
    values = keys ? PySequence_Tuple(values_arg) : NULL;
    if (values == NULL) {
        goto done;
    }
    Py_ssize_t nkeys = PyTuple_GET_SIZE(keys);
    if (PyTuple_GET_SIZE(values) != nkeys) {
        PyErr_SetString(PyExc_ValueError, "keys and values differ in length");
        goto done;
    }
    /* classes: 0 for bytes in no key, one per distinct key byte */
    int16_t class_of[256];
    for (int b = 0; b < 256; b++) {
        class_of[b] = -1;
    }
    int32_t nclasses = 1, longest = 0;
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < nkeys; i++) {
        PyObject *key = PyTuple_GET_ITEM(keys, i);
        if (!PyBytes_Check(key) || PyBytes_GET_SIZE(key) == 0) {
            PyErr_SetString(PyExc_TypeError, "every key must be non-empty bytes");
            goto done;
        }
        const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(key);
        Py_ssize_t n = PyBytes_GET_SIZE(key);
        for (Py_ssize_t j = 0; j < n; j++) {
            if (class_of[p[j]] < 0) {
                class_of[p[j]] = (int16_t)nclasses++;
            }
        }
        total += n;
        if (n > longest) {
            longest = n > INT32_MAX ? INT32_MAX : (int32_t)n;
        }
    }
    if (total >= INT32_MAX / (nclasses + ROW_EXTRA)) {
        PyErr_SetString(PyExc_ValueError, "too many key bytes");
        goto done;
    }
    automaton_free_tables(self);
    Py_ssize_t cells = (total + 1) * nclasses;
    self->delta = PyMem_New(int32_t, cells);
    self->key_of = PyMem_New(int32_t, total + 1);
    self->link = PyMem_New(int32_t, total + 1);
    self->emits = PyMem_New(uint8_t, total + 1);
    fail = PyMem_New(int32_t, total + 1);
    queue = PyMem_New(int32_t, total + 1);
    if (!self->delta || !self->key_of || !self->link || !self->emits || !fail || !queue) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t c = 0; c < cells; c++) {
        self->delta[c] = -1;
    }
    self->key_of[0] = -1;
    int32_t nstates = 1;
    for (Py_ssize_t i = 0; i < nkeys; i++) { /* the trie */
        PyObject *key = PyTuple_GET_ITEM(keys, i);
        const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(key);
        Py_ssize_t n = PyBytes_GET_SIZE(key);
        int32_t s = 0;
        for (Py_ssize_t j = 0; j < n; j++) {
            int32_t *cell = &self->delta[(Py_ssize_t)s * nclasses + class_of[p[j]]];
            if (*cell < 0) {
                self->key_of[nstates] = -1;
                *cell = nstates++;
            }
            s = *cell;
        }
        if (self->key_of[s] >= 0) {
            PyErr_Format(PyExc_ValueError, "duplicate key %R", key);
            goto done;
        }
        self->key_of[s] = (int32_t)i;
    }
    /* failure links breadth first; missing transitions take the failure state's */
    Py_ssize_t head = 0, tail = 0;
    fail[0] = 0;
    self->link[0] = 0;
    for (int32_t c = 0; c < nclasses; c++) {
        int32_t t = self->delta[c];
        if (t < 0) {
            self->delta[c] = 0;
        }
        else {
            fail[t] = 0;
            self->link[t] = 0;
            queue[tail++] = t;
        }
    }
    while (head < tail) {
        int32_t s = queue[head++];
        int32_t *row = &self->delta[(Py_ssize_t)s * nclasses];
        const int32_t *fail_row = &self->delta[(Py_ssize_t)fail[s] * nclasses];
        for (int32_t c = 0; c < nclasses; c++) {
            int32_t t = row[c];
            if (t < 0) {
                row[c] = fail_row[c];
            }
            else {
                int32_t f = fail_row[c];
                fail[t] = f;
                self->link[t] = self->key_of[f] >= 0 ? f : self->link[f];
                queue[tail++] = t;
            }
        }
    }
    for (int32_t s = 0; s < nstates; s++) {
        self->emits[s] = self->key_of[s] >= 0 || self->link[s] != 0;
    }
    if (renumber(self, nstates, nclasses) < 0) {
        goto done;
    }
    const unsigned char *f = (const unsigned char *)fold.buf;
    for (int b = 0; b < 256; b++) {
        int16_t c = class_of[f[b]];
        self->cls[b] = (uint16_t)(c < 0 ? 0 : c);
    }
    self->nstates = nstates;
    self->nclasses = nclasses;
    self->longest = longest;
    self->nkeys = nkeys;
    Py_XSETREF(self->values, values);
    values = NULL;
    ok = 0;
done:
    if (ok < 0) {
        automaton_free_tables(self);
    }
    PyMem_Free(fail);
    PyMem_Free(queue);
    Py_XDECREF(keys);
    Py_XDECREF(values);
    PyBuffer_Release(&fold);
    return ok;
}

/* room for `cap` matches in `m` (at least); 0, or -1 with MemoryError set */
static int
matches_reserve(AutomatonMatches *m, Py_ssize_t cap)
{
    if (cap <= m->cap) {
        return 0;
    }
    AutomatonMatch *grown = PyMem_Resize(m->v, AutomatonMatch, cap);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    m->v = grown;
    m->cap = cap;
    return 0;
}

static int
matches_push(AutomatonMatches *m, Py_ssize_t at, int32_t key)
{
    if (m->n == m->cap && matches_reserve(m, m->cap ? m->cap * 2 : 64) < 0) {
        return -1;
    }
    m->v[m->n].at = at;
    m->v[m->n].key = key;
    m->n++;
    return 0;
}

#define STREAMS 4
#define EXPECTED 16 /* text bytes a match, about, in news text (the tagger's keys and vocabulary) */
#define STEP(k, at)                                                                \
    do {                                                                           \
        state##k = delta[state##k + cls[p[at]]];                                   \
        if (state##k >= first_emitting && (at) >= from[k] &&                       \
            matches_push(&hits[k], (at), state##k) < 0) {                          \
            goto done;                                                             \
        }                                                                          \
    } while (0)

/* Every match in p[start:end] appended to `out` as (offset of its last byte, key index), by offset, the
   longest key first at one offset. The text is cut into STREAMS stretches scanned in one loop, each from
   `longest` bytes before its stretch (a DFA state depends on at most that many bytes), so the four dependency
   chains of table lookups run side by side; a stretch's hits are kept from its own start on. Hits are then
   listed stretch by stretch. */
static int
collect(const Automaton *self, const unsigned char *p, Py_ssize_t start, Py_ssize_t end, AutomatonMatches *out)
{
    const int32_t *delta = self->delta;
    const uint16_t *cls = self->cls;
    const int32_t first_emitting = self->first_emitting;
    AutomatonMatches hits[STREAMS] = {{NULL, 0, 0}}; /* where a stream passed through a state that emits:
                                                      (offset, row offset of the state) */
    Py_ssize_t from[STREAMS + 1], stop[STREAMS], begin[STREAMS];
    Py_ssize_t length = end - start;
    int streams = length >= (Py_ssize_t)8 * self->longest + 256 ? STREAMS : 1;
    int rc = -1;
    for (int k = 0; k < streams; k++) {
        from[k] = start + length / streams * k;
        begin[k] = k ? from[k] - self->longest : start;
    }
    from[streams] = end;
    for (int k = 0; k < streams; k++) {
        stop[k] = from[k + 1];
        /* room for a match every EXPECTED bytes, so a story's scan mostly allocates once a stream */
        if (matches_reserve(&hits[k], (stop[k] - begin[k]) / EXPECTED + 16) < 0) {
            goto done;
        }
    }
    int32_t state0 = 0, state1 = 0, state2 = 0, state3 = 0;
    Py_ssize_t at = begin[0];
    if (streams == STREAMS) {
        /* one index j runs the four streams; stream k reads p[begin[k] + j] */
        const Py_ssize_t b1 = begin[1] - begin[0], b2 = begin[2] - begin[0], b3 = begin[3] - begin[0];
        Py_ssize_t steps = stop[0] - begin[0];
        for (int k = 1; k < STREAMS; k++) {
            if (stop[k] - begin[k] < steps) {
                steps = stop[k] - begin[k];
            }
        }
        for (Py_ssize_t j = begin[0]; j < begin[0] + steps; j++) {
            STEP(0, j);
            STEP(1, j + b1);
            STEP(2, j + b2);
            STEP(3, j + b3);
        }
        for (Py_ssize_t j = begin[1] + steps; j < stop[1]; j++) {
            STEP(1, j);
        }
        for (Py_ssize_t j = begin[2] + steps; j < stop[2]; j++) {
            STEP(2, j);
        }
        for (Py_ssize_t j = begin[3] + steps; j < stop[3]; j++) {
            STEP(3, j);
        }
        at = begin[0] + steps;
    }
    for (; at < stop[0]; at++) {
        STEP(0, at);
    }
    const int32_t *key_of = delta + self->nclasses + ROW_KEY, *link = delta + self->nclasses + ROW_LINK;
    Py_ssize_t found = out->n;
    for (int k = 0; k < streams; k++) {
        found += hits[k].n;
    }
    if (matches_reserve(out, found + found / 8 + 16) < 0) {
        goto done;
    }
    for (int k = 0; k < streams; k++) {
        for (Py_ssize_t h = 0; h < hits[k].n; h++) {
            int32_t s = hits[k].v[h].key; /* a row offset, as key_of and link are indexed */
            for (int32_t t = key_of[s] >= 0 ? s : link[s]; t != 0; t = link[t]) {
                if (matches_push(out, hits[k].v[h].at, key_of[t]) < 0) {
                    goto done;
                }
            }
        }
    }
    rc = 0;
done:
    for (int k = 0; k < STREAMS; k++) {
        PyMem_Free(hits[k].v);
    }
    return rc;
}

static PyObject *
automaton_scan(Automaton *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"text", "start", "end", NULL};
    Py_buffer text;
    Py_ssize_t start = 0, end = PY_SSIZE_T_MAX;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*|nn", kwlist, &text, &start, &end)) {
        return NULL;
    }
    if (self->delta == NULL) {
        PyBuffer_Release(&text);
        PyErr_SetString(PyExc_ValueError, "automaton not initialized");
        return NULL;
    }
    if (start < 0) {
        start = 0;
    }
    if (end > text.len) {
        end = text.len;
    }
    if (end < start) {
        end = start;
    }
    AutomatonMatches found = {NULL, 0, 0};
    PyObject *out = NULL;
    if (collect(self, (const unsigned char *)text.buf, start, end, &found) < 0) {
        goto done;
    }
    out = PyList_New(found.n);
    if (out == NULL) {
        goto done;
    }
    for (Py_ssize_t k = 0; k < found.n; k++) {
        PyObject *pair = PyTuple_New(2), *offset = PyLong_FromSsize_t(found.v[k].at);
        if (pair == NULL || offset == NULL) {
            Py_XDECREF(pair);
            Py_XDECREF(offset);
            Py_CLEAR(out);
            goto done;
        }
        PyObject *value = PyTuple_GET_ITEM(self->values, found.v[k].key);
        Py_INCREF(value);
        PyTuple_SET_ITEM(pair, 0, offset);
        PyTuple_SET_ITEM(pair, 1, value);
        PyList_SET_ITEM(out, k, pair);
    }
done:
    PyMem_Free(found.v);
    PyBuffer_Release(&text);
    return out;
}

/* The C interface (_automaton.h): the same matches for another extension, as a C array. */
static int
api_matches(PyObject *automaton, const unsigned char *text, Py_ssize_t start, Py_ssize_t end,
            AutomatonMatches *out)
{
    const Automaton *self = (const Automaton *)automaton;
    if (self->delta == NULL) {
        PyErr_SetString(PyExc_ValueError, "automaton not initialized");
        return -1;
    }
    return start < end ? collect(self, text, start, end, out) : 0;
}

static Py_ssize_t
api_nkeys(PyObject *automaton)
{
    return ((const Automaton *)automaton)->delta == NULL ? -1 : ((const Automaton *)automaton)->nkeys;
}

static PyObject *
automaton_states(Automaton *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLong(self->nstates);
}

static PyMethodDef automaton_methods[] = {
    {"scan", (PyCFunction)(void (*)(void))automaton_scan, METH_VARARGS | METH_KEYWORDS,
     "scan(text, start=0, end=len(text)) -> [(offset of a key's last byte, its value), ...]: every match in "
     "text[start:end], overlapping ones included, by offset, the longest key first at one offset."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef automaton_getset[] = {
    {"states", (getter)automaton_states, NULL, "states of the DFA", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject AutomatonType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pipeline.tagging._automaton.Automaton",
    .tp_basicsize = sizeof(Automaton),
    .tp_dealloc = (destructor)automaton_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Automaton(keys, values, fold): an Aho-Corasick DFA over byte keys, text folded by a 256-byte table.",
    .tp_methods = automaton_methods,
    .tp_getset = automaton_getset,
    .tp_init = (initproc)automaton_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pipeline.tagging._automaton",
    .m_doc = "The tagger's keyword scan, compiled (pure-Python fallback: ahocorasick_rs).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__automaton(void)
{
    if (PyType_Ready(&AutomatonType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&AutomatonType);
    if (PyModule_AddObject(m, "Automaton", (PyObject *)&AutomatonType) < 0) {
        Py_DECREF(&AutomatonType);
        Py_DECREF(m);
        return NULL;
    }
    static AutomatonAPI api = {&AutomatonType, api_matches, api_nkeys};
    PyObject *capsule = PyCapsule_New(&api, AUTOMATON_CAPSULE, NULL);
    if (capsule == NULL || PyModule_AddObject(m, "_C_API", capsule) < 0) {
        Py_XDECREF(capsule);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
