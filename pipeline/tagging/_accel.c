/* pipeline.tagging._accel: the sense model's word lookup in C (optional; pipeline/tagging/rules.py runs the
 * same loop in Python when this module is not built, with the same results).
 *
 * Vocabulary(words, names).known(low): the names of the distinct words of `low` that are in the vocabulary,
 *   words being what rules._words_of(low) yields (bytes.split() after mapping 0x85 and 0xA0 to a space). The
 *   words are hashed and looked up in the object's own open-addressing table as they are scanned: no bytes
 *   object per word.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Separators of bytes.split() (Py_ISSPACE: \t \n \v \f \r and space) plus 0x85 and 0xA0, which str.split()
 * also splits the latin-1 text at. */
static const unsigned char IS_SEPARATOR[256] = {
    [0x09] = 1, [0x0a] = 1, [0x0b] = 1, [0x0c] = 1, [0x0d] = 1, [0x20] = 1, [0x85] = 1, [0xa0] = 1,
};

#define MIX UINT64_C(0x9E3779B97F4A7C15)

typedef struct {
    uint64_t hash;
    uint64_t stamp;     /* the known() call that last reported this word */
    Py_ssize_t offset;  /* of the word in keys */
    Py_ssize_t length;
    Py_ssize_t name;    /* index in names; -1: an empty slot */
} Slot;

typedef struct {
    PyObject_HEAD
    PyObject *words;    /* tuple of bytes, as given (for __reduce__) */
    PyObject *names;    /* tuple of str */
    char *keys;         /* every word's bytes, concatenated */
    Slot *slots;
    size_t mask;        /* slots - 1, slots a power of two at least twice the words */
    Py_ssize_t count;   /* distinct words */
    Py_ssize_t longest; /* longer words cannot be in the table */
    uint64_t stamp;
} Vocabulary;

/* A word's hash: a rotate-xor of its bytes as they are scanned (short dependency chain), mixed once. */
#define ROLL(h, c) ((((h) << 7) | ((h) >> 57)) ^ (c))

static uint64_t
finish_hash(uint64_t h)
{
    h *= MIX;
    return h ^ (h >> 31);
}

static uint64_t
hash_bytes(const unsigned char *p, Py_ssize_t n)
{
    uint64_t h = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        h = ROLL(h, p[k]);
    }
    return finish_hash(h);
}

/* The slot holding the word, or the empty slot where it would go. */
static Slot *
find_slot(const Vocabulary *self, const unsigned char *word, Py_ssize_t length, uint64_t hash)
{
    size_t k = (size_t)hash & self->mask;
    for (;;) {
        Slot *slot = &self->slots[k];
        if (slot->name < 0 ||
            (slot->hash == hash && slot->length == length &&
             memcmp(self->keys + slot->offset, word, (size_t)length) == 0)) {
            return slot;
        }
        k = (k + 1) & self->mask;
    }
}

static void
Vocabulary_dealloc(Vocabulary *self)
{
    Py_XDECREF(self->words);
    Py_XDECREF(self->names);
    PyMem_Free(self->keys);
    PyMem_Free(self->slots);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Vocabulary_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"words", "names", NULL};
    PyObject *words_arg, *names_arg;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO:Vocabulary", kwlist, &words_arg, &names_arg)) {
        return NULL;
    }
    Vocabulary *self = (Vocabulary *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    /* tp_alloc zeroes the object: dealloc is safe from here on */
    self->words = PySequence_Tuple(words_arg);
    if (self->words == NULL) {
        goto fail;
    }
    self->names = PySequence_Tuple(names_arg);
    if (self->names == NULL) {
        goto fail;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(self->words);
    if (PyTuple_GET_SIZE(self->names) != n) {
        PyErr_Format(PyExc_ValueError, "Vocabulary: %zd words but %zd names", n,
                     PyTuple_GET_SIZE(self->names));
        goto fail;
    }
    Py_ssize_t total = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *word = PyTuple_GET_ITEM(self->words, k);
        PyObject *name = PyTuple_GET_ITEM(self->names, k);
        if (!PyBytes_Check(word)) {
            PyErr_Format(PyExc_TypeError, "Vocabulary: word %zd is %.100s, not bytes", k, Py_TYPE(word)->tp_name);
            goto fail;
        }
        if (!PyUnicode_Check(name)) {
            PyErr_Format(PyExc_TypeError, "Vocabulary: name %zd is %.100s, not str", k, Py_TYPE(name)->tp_name);
            goto fail;
        }
        if (PyBytes_GET_SIZE(word) > PY_SSIZE_T_MAX - total) {
            PyErr_NoMemory();
            goto fail;
        }
        total += PyBytes_GET_SIZE(word);
    }
    size_t size = 8;
    while (size < (size_t)n * 2) {
        if (size > (SIZE_MAX / sizeof(Slot)) / 4) {
            PyErr_NoMemory();
            goto fail;
        }
        size *= 2;
    }
    self->mask = size - 1;
    self->slots = PyMem_Malloc(size * sizeof(Slot));
    self->keys = PyMem_Malloc(total > 0 ? (size_t)total : 1);
    if (self->slots == NULL || self->keys == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (size_t k = 0; k < size; k++) {
        self->slots[k] = (Slot){0, 0, 0, 0, -1};
    }
    Py_ssize_t offset = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *word = PyTuple_GET_ITEM(self->words, k);
        const unsigned char *bytes = (const unsigned char *)PyBytes_AS_STRING(word);
        Py_ssize_t length = PyBytes_GET_SIZE(word);
        uint64_t hash = hash_bytes(bytes, length);
        Slot *slot = find_slot(self, bytes, length, hash);
        if (slot->name < 0) {  /* a new word (a repeated one takes its last name, as a dict would) */
            memcpy(self->keys + offset, bytes, (size_t)length);
            *slot = (Slot){hash, 0, offset, length, k};
            offset += length;
            self->count++;
            if (length > self->longest) {
                self->longest = length;
            }
        }
        slot->name = k;
    }
    return (PyObject *)self;
fail:
    Py_DECREF(self);
    return NULL;
}

static PyObject *
Vocabulary_known(Vocabulary *self, PyObject *low)
{
    if (!PyBytes_Check(low)) {
        PyErr_Format(PyExc_TypeError, "known() takes bytes, not %.100s", Py_TYPE(low)->tp_name);
        return NULL;
    }
    PyObject *out = PyFrozenSet_New(NULL);  /* a new object, filled before anyone else sees it */
    if (out == NULL) {
        return NULL;
    }
    Py_INCREF(low);  /* its buffer stays ours while set additions run */
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(low);
    Py_ssize_t n = PyBytes_GET_SIZE(low), i = 0;
    uint64_t stamp = ++self->stamp;
    while (i < n) {
        while (i < n && IS_SEPARATOR[p[i]]) {
            i++;
        }
        if (i == n) {
            break;
        }
        Py_ssize_t start = i;
        uint64_t h = 0;
        while (i < n && !IS_SEPARATOR[p[i]]) {
            h = ROLL(h, p[i]);
            i++;
        }
        if (i - start > self->longest) {
            continue;
        }
        Slot *slot = find_slot(self, p + start, i - start, finish_hash(h));
        if (slot->name < 0 || slot->stamp == stamp) {
            continue;
        }
        slot->stamp = stamp;
        if (PySet_Add(out, PyTuple_GET_ITEM(self->names, slot->name)) < 0) {
            Py_DECREF(low);
            Py_DECREF(out);
            return NULL;
        }
    }
    Py_DECREF(low);
    return out;
}

static PyObject *
Vocabulary_reduce(Vocabulary *self, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("O(OO)", (PyObject *)Py_TYPE(self), self->words, self->names);
}

static Py_ssize_t
Vocabulary_len(Vocabulary *self)
{
    return self->count;
}

static PyMethodDef Vocabulary_methods[] = {
    {"known", (PyCFunction)Vocabulary_known, METH_O,
     "known(low: bytes) -> frozenset[str]: the names of the distinct words of low in the vocabulary."},
    {"__reduce__", (PyCFunction)Vocabulary_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods Vocabulary_as_sequence = {
    .sq_length = (lenfunc)Vocabulary_len,
};

static PyTypeObject VocabularyType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pipeline.tagging._accel.Vocabulary",
    .tp_doc = "Vocabulary(words: Sequence[bytes], names: Sequence[str]): an immutable word -> name table.",
    .tp_basicsize = sizeof(Vocabulary),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Vocabulary_new,
    .tp_dealloc = (destructor)Vocabulary_dealloc,
    .tp_methods = Vocabulary_methods,
    .tp_as_sequence = &Vocabulary_as_sequence,
};

static struct PyModuleDef accel_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pipeline.tagging._accel",
    .m_doc = "The sense model's word lookup in C (optional: rules.py has it in Python, same output).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__accel(void)
{
    if (PyType_Ready(&VocabularyType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&accel_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&VocabularyType);
    if (PyModule_AddObject(module, "Vocabulary", (PyObject *)&VocabularyType) < 0) {
        Py_DECREF(&VocabularyType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
