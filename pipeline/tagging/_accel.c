/* pipeline.tagging._accel: the sense model's word lookup in C (optional; pipeline/tagging/rules.py runs the
 * same loop in Python when this module is not built, with the same results).
 *
 * Vocabulary(words, names).known(low): the names of the distinct words of `low` that are in the vocabulary,
 *   words being what rules._words_of(low) yields (bytes.split() after mapping 0x85 and 0xA0 to a space). A
 *   word is looked up by its first 16 bytes (two integers) in the object's own open-addressing index, as it
 *   is scanned: no bytes object per word. TagCore finds a story's words 64 bytes at a time (sense_words).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "_automaton.h"

#if defined(__SSE2__)
#include <emmintrin.h> /* 16 bytes at a time where the text is ASCII (x86-64 always has SSE2) */
#endif

/* Separators of bytes.split() (Py_ISSPACE: \t \n \v \f \r and space) plus 0x85 and 0xA0, which str.split()
 * also splits the latin-1 text at. */
static const unsigned char IS_SEPARATOR[256] = {
    [0x09] = 1, [0x0a] = 1, [0x0b] = 1, [0x0c] = 1, [0x0d] = 1, [0x20] = 1, [0x85] = 1, [0xa0] = 1,
};

#define MIX UINT64_C(0x9E3779B97F4A7C15)

/* A vocabulary word: its first 16 bytes as two little words, zero-padded, so a lookup compares two integers
   (and the rest of the bytes only for a word longer than 16) */
typedef struct {
    uint64_t lo, hi;
    Py_ssize_t offset;  /* of the word in keys */
    Py_ssize_t length;
    Py_ssize_t name;    /* index in names (a repeated word: its last) */
} Word;

typedef struct {
    PyObject_HEAD
    PyObject *words;    /* tuple of bytes, as given (for __reduce__) */
    PyObject *names;    /* tuple of str */
    char *keys;         /* every word's bytes, concatenated */
    Word *entries;      /* the distinct words */
    uint64_t *stamps;   /* per entry: the known() call that last reported it */
    uint32_t *index;    /* open addressing, at most a quarter full: entry + 1, or 0 */
    size_t mask;        /* index size - 1 */
    int shift;          /* 64 - log2(index size) */
    Py_ssize_t count;   /* distinct words */
    Py_ssize_t longest; /* longer words cannot be in the table */
    uint64_t stamp;
} Vocabulary;

/* the bytes of the first min(length, 16) that a word keeps: LOW_MASK[length], HIGH_MASK[length] */
#define KEEP(n) ((n) >= 8 ? ~UINT64_C(0) : (UINT64_C(1) << (8 * (n))) - 1)
#define KEEP_LOW(n) KEEP(n)
#define KEEP_HIGH(n) ((n) <= 8 ? UINT64_C(0) : KEEP((n) - 8))
static const uint64_t LOW_MASK[17] = {
    KEEP_LOW(0), KEEP_LOW(1), KEEP_LOW(2), KEEP_LOW(3), KEEP_LOW(4), KEEP_LOW(5), KEEP_LOW(6), KEEP_LOW(7),
    KEEP_LOW(8), KEEP_LOW(9), KEEP_LOW(10), KEEP_LOW(11), KEEP_LOW(12), KEEP_LOW(13), KEEP_LOW(14),
    KEEP_LOW(15), KEEP_LOW(16),
};
static const uint64_t HIGH_MASK[17] = {
    KEEP_HIGH(0), KEEP_HIGH(1), KEEP_HIGH(2), KEEP_HIGH(3), KEEP_HIGH(4), KEEP_HIGH(5), KEEP_HIGH(6),
    KEEP_HIGH(7), KEEP_HIGH(8), KEEP_HIGH(9), KEEP_HIGH(10), KEEP_HIGH(11), KEEP_HIGH(12), KEEP_HIGH(13),
    KEEP_HIGH(14), KEEP_HIGH(15), KEEP_HIGH(16),
};

/* lo, hi of a word whose 16 bytes from p may be read (a padded buffer) */
static inline void
word_head_padded(const unsigned char *p, Py_ssize_t length, uint64_t *lo, uint64_t *hi)
{
    int n = length < 16 ? (int)length : 16;
    memcpy(lo, p, 8);
    memcpy(hi, p + 8, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    *lo = __builtin_bswap64(*lo); /* the masks keep the low-order bytes: the word's first ones, little-endian */
    *hi = __builtin_bswap64(*hi);
#endif
    *lo &= LOW_MASK[n];
    *hi &= HIGH_MASK[n];
}

/* the same where only `length` bytes may be read */
static inline void
word_head(const unsigned char *p, Py_ssize_t length, uint64_t *lo, uint64_t *hi)
{
    unsigned char head[16] = {0};
    memcpy(head, p, (size_t)(length < 16 ? length : 16));
    word_head_padded(head, length, lo, hi);
}

#define HIGH_MIX UINT64_C(0xC2B2AE3D27D4EB4F)

static inline size_t
word_slot(const Vocabulary *self, uint64_t lo, uint64_t hi)
{
    return (size_t)(((lo ^ (hi * HIGH_MIX)) * MIX) >> self->shift);
}

/* whether entry w is the word p[:length] (lo, hi: its head) */
static inline int
word_is(const Vocabulary *self, const Word *w, const unsigned char *p, Py_ssize_t length, uint64_t lo, uint64_t hi)
{
    return w->lo == lo && w->hi == hi && w->length == length &&
           (length <= 16 || memcmp(self->keys + w->offset + 16, p + 16, (size_t)(length - 16)) == 0);
}

/* The entry of the word p[:length] (lo, hi: its head), or -1; *slot: where the index has it or would */
static inline Py_ssize_t
vocab_find(const Vocabulary *self, const unsigned char *p, Py_ssize_t length, uint64_t lo, uint64_t hi,
           size_t *slot)
{
    size_t k = word_slot(self, lo, hi);
    for (;;) {
        uint32_t e = self->index[k];
        if (e == 0 || word_is(self, &self->entries[e - 1], p, length, lo, hi)) {
            *slot = k;
            return (Py_ssize_t)e - 1;
        }
        k = (k + 1) & self->mask;
    }
}

/* The entry of the word p[:length], or -1 */
static inline Py_ssize_t
vocab_lookup(const Vocabulary *self, const unsigned char *p, Py_ssize_t length, uint64_t lo, uint64_t hi)
{
    size_t slot;
    return vocab_find(self, p, length, lo, hi, &slot);
}

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

static void
Vocabulary_dealloc(Vocabulary *self)
{
    Py_XDECREF(self->words);
    Py_XDECREF(self->names);
    PyMem_Free(self->keys);
    PyMem_Free(self->entries);
    PyMem_Free(self->stamps);
    PyMem_Free(self->index);
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
    if (n > (Py_ssize_t)(UINT32_MAX / 8)) {
        PyErr_NoMemory();
        goto fail;
    }
    size_t size = 16;
    int bits = 4;
    while (size < (size_t)n * 4) {
        size *= 2;
        bits++;
    }
    self->mask = size - 1;
    self->shift = 64 - bits;
    self->index = PyMem_Calloc(size, sizeof(uint32_t));
    self->entries = PyMem_Malloc((size_t)(n > 0 ? n : 1) * sizeof(Word));
    self->stamps = PyMem_Calloc((size_t)(n > 0 ? n : 1), sizeof(uint64_t));
    self->keys = PyMem_Malloc(total > 0 ? (size_t)total : 1);
    if (self->index == NULL || self->entries == NULL || self->stamps == NULL || self->keys == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    Py_ssize_t offset = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *word = PyTuple_GET_ITEM(self->words, k);
        const unsigned char *bytes = (const unsigned char *)PyBytes_AS_STRING(word);
        Py_ssize_t length = PyBytes_GET_SIZE(word);
        uint64_t lo, hi;
        size_t slot;
        word_head(bytes, length, &lo, &hi);
        Py_ssize_t e = vocab_find(self, bytes, length, lo, hi, &slot);
        if (e < 0) { /* a new word (a repeated one takes its last name, as a dict would) */
            memcpy(self->keys + offset, bytes, (size_t)length);
            e = self->count++;
            self->entries[e] = (Word){lo, hi, offset, length, k};
            self->index[slot] = (uint32_t)e + 1;
            offset += length;
            if (length > self->longest) {
                self->longest = length;
            }
        }
        self->entries[e].name = k;
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
        while (i < n && !IS_SEPARATOR[p[i]]) {
            i++;
        }
        if (i - start > self->longest) {
            continue;
        }
        uint64_t lo, hi;
        word_head(p + start, i - start, &lo, &hi);
        Py_ssize_t e = vocab_lookup(self, p + start, i - start, lo, hi);
        if (e < 0 || self->stamps[e] == stamp) {
            continue;
        }
        self->stamps[e] = stamp;
        if (PySet_Add(out, PyTuple_GET_ITEM(self->names, self->entries[e].name)) < 0) {
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

/* ---------------------------------------------------------------------------------------------------------
 * TagCore: Tagger.tag()'s whole path after prepare_raw() in C (rules.Tagger builds it from its own tables; see
 * Tagger._core_tables for what each table holds). tag(raw, sep) -> (topics, hits), the output of the Python
 * path exactly: the scan (the Automaton's C interface, _automaton.h), the kept hits (case, context, blocking
 * and overlap rules), the sense model's inputs (mentions, dismissal, near words, the story's known words and
 * word classes), its decision (the same float operations in the same order as sense.SenseModel.judge) and the
 * result with its evidence. Every per-story structure is a C array; Python objects are made for the output
 * only. */

/* Whitespace of the regex \s in a bytes pattern, and the sentence-ending marks of rules._SENTENCE_END */
static const unsigned char RE_SPACE[256] = {[' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1, ['\f'] = 1, ['\v'] = 1};
static const unsigned char SENTENCE_MARK[256] = {['.'] = 1, ['?'] = 1, ['!'] = 1, [';'] = 1};
/* bytes.rstrip()'s whitespace, and what before a capital makes it a sentence's first word (_inside_sentence) */
static const unsigned char STRIPPED[256] = {[' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1, ['\f'] = 1, ['\v'] = 1};
static const unsigned char OPENS_SENTENCE[256] = {
    ['.'] = 1, ['!'] = 1, ['?'] = 1, [':'] = 1, ['"'] = 1, ['\''] = 1, [0xff] = 1, ['\n'] = 1,
};

#define MAX_OWNED 200

typedef struct {
    uint64_t hash;
    Py_ssize_t offset, length; /* of the word in near_blob */
    int32_t rank;              /* -1: an empty slot */
    double weight;
} NearSlot;

/* Per-story marks, kept between calls: an entry counts for the story (or the topic) whose stamp it holds, so
   nothing is cleared per story. */
typedef struct {
    uint64_t stamp;                                   /* the last stamp given out */
    uint64_t *voc_seen, *voc_title, *voc_own;         /* per vocabulary word */
    uint64_t *held_stamp;                             /* ranks x names */
    int32_t *held;
    uint64_t *name_stamp, *title_stamp, *proper_stamp; /* per name */
    int32_t *name_count;
    unsigned char *name_title;
    uint64_t *form_stamp; /* per form */
    int32_t *form_count;
    uint64_t *titled, *tid_stamp; /* per term */
    int32_t *tid_count;
    uint64_t *set_stamp;                /* per context set */
    uint64_t *rule_stamp, *rule_title; /* per rank */
    int32_t *class_count, *class_title; /* per class: the story's words in it, those of them in the title */
} Scratch;

typedef struct {
    PyObject_HEAD
    const AutomatonAPI *api;
    PyObject *scanner; /* Automaton of the tagger's keys (nkeys, first) and the dismissal phrases */
    Vocabulary *vocab;   /* the sense model's words and the class words, or NULL without a model */
    PyObject *topic_ids, *term_names, *names, *class_terms; /* tuples of str */
    PyObject *k_topic, *k_term, *k_count, *k_in_title, *sense_prefix;
    PyObject *hit_template; /* {"topic": None, "term": None, "count": 0, "in_title": False} */
    /* per hit kind, the hit of one topic and term with count 1, made from hit_template on first use: a hit is
       a copy of its template with count and in_title set where they differ (HIT_* slots below) */
    PyObject **hit_templates;
    Py_ssize_t ntemplates;
    void *owned[MAX_OWNED]; /* every table below, freed with the object */
    int nowned;
    unsigned char fold[256], keep[256]; /* ASCII_LOWER_TO_SPACE, ASCII_TO_SPACE */
    int fold_is_formula;                /* fold is what folded() computes */
    int low_controls;                   /* fold keeps a byte \t \n \v \f or \r (a separator) */
    Py_ssize_t nkeys, nsets, nterms, nranks, nnames, nclasses, nforms, nvocab, nexact, nrules;
    int any_dismissal; /* some scanner key is a dismissal phrase */
    Py_ssize_t longest, before, after, reach, words_chars, near, near_words, near_chars, lead_chars;
    int32_t *key_len, *ctx_off, *ctx, *plain_off, *plain, *chk_off, *chk_tid, *chk_rank, *chk_wait, *chk_exact,
        *chk_rule, *blk_off, *blk, *men_off, *men_rank, *men_name, *men_exact, *men_gate, *men_cand, *men_form;
    double *men_formw;
    int32_t *own_off, *own, *exact_off, *exact_form_off;
    unsigned char *exact_blob;
    int32_t *rule_before, *rule_after, *rule_off, *rule_set, *rule_wanted, *term_rank, *term_name, *decided;
    int any_decided;
    double *bias, *threshold, *w_terms, *w_candidates, *w_length, *w_dismissed, *w_all_dismissed, *w_rule_any,
        *w_rule_title, *w_once, *w_late, *w_class, *w_cclass, *w_title, *w_proper, *w_unruled;
    int32_t *class_order, *cclass_order, *voc_order, *voc_class_off, *voc_class,
        *dis_len, *voc_key;
    int32_t *voc_class1; /* per vocabulary word: its first class, or nclasses (a slot nothing reads) */
    int vocab_in_scan; /* voc_key covers every vocabulary word: sense_words may take the scanner's matches */
    int64_t *voc_micro;
    double *voc_w;
    NearSlot *near_slots;
    size_t near_mask;
    unsigned char *near_blob;
    Scratch *scratch; /* NULL while a call uses it (then a call made meanwhile gets one of its own) */
} TagCore;

/* ASCII_LOWER_TO_SPACE as a formula: A-Z lower-cased, other letters and digits and bytes >= 128 kept, every
   other byte a space. TagCore folds 16 bytes at a time with it when its `fold` table is this one. */
static unsigned char
folded(unsigned char b)
{
    if (b >= 0x80 || (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9')) {
        return b;
    }
    return b >= 'A' && b <= 'Z' ? (unsigned char)(b | 0x20) : ' ';
}

/* --- construction: flat tables from a dict of sequences */

static void *
core_own(TagCore *self, void *p)
{
    if (p == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    if (self->nowned == MAX_OWNED) {
        PyMem_Free(p);
        PyErr_SetString(PyExc_RuntimeError, "TagCore: too many tables");
        return NULL;
    }
    self->owned[self->nowned++] = p;
    return p;
}

static PyObject *
table_item(PyObject *tables, const char *name)
{
    PyObject *seq = PyDict_GetItemString(tables, name); /* borrowed */
    if (seq == NULL) {
        PyErr_Format(PyExc_KeyError, "TagCore: table %s missing", name);
        return NULL;
    }
    return PySequence_Fast(seq, name);
}

/* tables[name] as int64 values in [low, high], `expect` of them (-1: any number; *n set) */
static int64_t *
load_ints(TagCore *self, PyObject *tables, const char *name, Py_ssize_t expect, Py_ssize_t *n, int64_t low,
          int64_t high)
{
    PyObject *seq = table_item(tables, name);
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    int64_t *out = NULL;
    if (expect >= 0 && count != expect) {
        PyErr_Format(PyExc_ValueError, "TagCore: table %s has %zd values, not %zd", name, count, expect);
        goto done;
    }
    out = core_own(self, PyMem_Malloc(sizeof(int64_t) * (size_t)(count + 1)));
    if (out == NULL) {
        goto done;
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        long long v = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(seq, k));
        if (v == -1 && PyErr_Occurred()) {
            out = NULL;
            goto done;
        }
        if (v < low || v > high) {
            PyErr_Format(PyExc_ValueError, "TagCore: table %s: %lld out of range", name, v);
            out = NULL;
            goto done;
        }
        out[k] = v;
    }
    if (n != NULL) {
        *n = count;
    }
done:
    Py_DECREF(seq);
    return out;
}

static int32_t *
load_i32(TagCore *self, PyObject *tables, const char *name, Py_ssize_t expect, Py_ssize_t *n, int64_t low,
         int64_t high)
{
    Py_ssize_t count;
    int64_t *wide = load_ints(self, tables, name, expect, &count, low, high);
    if (wide == NULL) {
        return NULL;
    }
    int32_t *out = core_own(self, PyMem_Malloc(sizeof(int32_t) * (size_t)(count + 1)));
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        out[k] = (int32_t)wide[k];
    }
    if (n != NULL) {
        *n = count;
    }
    return out;
}

/* CSR offsets: `rows + 1` nondecreasing values from 0; *total set to the last */
static int32_t *
load_offsets(TagCore *self, PyObject *tables, const char *name, Py_ssize_t rows, Py_ssize_t *total)
{
    int32_t *off = load_i32(self, tables, name, rows + 1, NULL, 0, INT32_MAX);
    if (off == NULL) {
        return NULL;
    }
    for (Py_ssize_t k = 0; k < rows; k++) {
        if (off[k] > off[k + 1] || (k == 0 && off[0] != 0)) {
            PyErr_Format(PyExc_ValueError, "TagCore: offsets %s are not sorted", name);
            return NULL;
        }
    }
    *total = off[rows];
    return off;
}

static double *
load_floats(TagCore *self, PyObject *tables, const char *name, Py_ssize_t expect)
{
    PyObject *seq = table_item(tables, name);
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    double *out = NULL;
    if (count != expect) {
        PyErr_Format(PyExc_ValueError, "TagCore: table %s has %zd values, not %zd", name, count, expect);
        goto done;
    }
    out = core_own(self, PyMem_Malloc(sizeof(double) * (size_t)(count + 1)));
    if (out == NULL) {
        goto done;
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        double v = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, k));
        if (v == -1.0 && PyErr_Occurred()) {
            out = NULL;
            goto done;
        }
        if (!isfinite(v)) {
            PyErr_Format(PyExc_ValueError, "TagCore: table %s: a weight is not finite", name);
            out = NULL;
            goto done;
        }
        out[k] = v;
    }
done:
    Py_DECREF(seq);
    return out;
}

/* tables[name] (a sequence of bytes) concatenated; offsets[count + 1] into it */
static unsigned char *
load_blob(TagCore *self, PyObject *tables, const char *name, Py_ssize_t expect, int32_t **offsets)
{
    PyObject *seq = table_item(tables, name);
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq), total = 0;
    unsigned char *blob = NULL;
    if (expect >= 0 && count != expect) {
        PyErr_Format(PyExc_ValueError, "TagCore: table %s has %zd values, not %zd", name, count, expect);
        goto done;
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, k);
        if (!PyBytes_Check(item)) {
            PyErr_Format(PyExc_TypeError, "TagCore: table %s holds bytes", name);
            goto done;
        }
        total += PyBytes_GET_SIZE(item);
        if (total > INT32_MAX) {
            PyErr_NoMemory();
            goto done;
        }
    }
    int32_t *off = core_own(self, PyMem_Malloc(sizeof(int32_t) * (size_t)(count + 1)));
    blob = off ? core_own(self, PyMem_Malloc((size_t)total + 1)) : NULL;
    if (blob == NULL) {
        goto done;
    }
    off[0] = 0;
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, k);
        memcpy(blob + off[k], PyBytes_AS_STRING(item), (size_t)PyBytes_GET_SIZE(item));
        off[k + 1] = off[k] + (int32_t)PyBytes_GET_SIZE(item);
    }
    *offsets = off;
done:
    Py_DECREF(seq);
    return blob;
}

static int
load_param(PyObject *tables, const char *name, Py_ssize_t *out, Py_ssize_t high)
{
    PyObject *v = PyDict_GetItemString(tables, name);
    if (v == NULL) {
        PyErr_Format(PyExc_KeyError, "TagCore: parameter %s missing", name);
        return -1;
    }
    *out = PyLong_AsSsize_t(v);
    if (*out == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (*out < 0 || *out > high) {
        PyErr_Format(PyExc_ValueError, "TagCore: parameter %s out of range", name);
        return -1;
    }
    return 0;
}

static PyObject *
load_strings(PyObject *tables, const char *name, Py_ssize_t expect)
{
    PyObject *seq = PyDict_GetItemString(tables, name);
    if (seq == NULL) {
        PyErr_Format(PyExc_KeyError, "TagCore: table %s missing", name);
        return NULL;
    }
    PyObject *out = PySequence_Tuple(seq);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(out); k++) {
        if (!PyUnicode_Check(PyTuple_GET_ITEM(out, k))) {
            PyErr_Format(PyExc_TypeError, "TagCore: table %s holds str", name);
            Py_DECREF(out);
            return NULL;
        }
    }
    if (expect >= 0 && PyTuple_GET_SIZE(out) != expect) {
        PyErr_Format(PyExc_ValueError, "TagCore: table %s has %zd values, not %zd", name, PyTuple_GET_SIZE(out),
                     expect);
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

static NearSlot *
near_find(const TagCore *self, int32_t rank, const unsigned char *word, Py_ssize_t length, uint64_t hash)
{
    size_t k = (size_t)(hash ^ ((uint64_t)rank * MIX)) & self->near_mask;
    for (;;) {
        NearSlot *slot = &self->near_slots[k];
        if (slot->rank < 0 || (slot->hash == hash && slot->rank == rank && slot->length == length &&
                               memcmp(self->near_blob + slot->offset, word, (size_t)length) == 0)) {
            return slot;
        }
        k = (k + 1) & self->near_mask;
    }
}

/* The `near:<word>` cue weights: (rank, word) -> weight */
static int
load_near(TagCore *self, PyObject *tables)
{
    Py_ssize_t n;
    int32_t *offsets = NULL;
    int32_t *ranks = load_i32(self, tables, "near_rank", -1, &n, 0, self->nranks - 1);
    double *weights = ranks ? load_floats(self, tables, "near_weight", n) : NULL;
    self->near_blob = weights ? load_blob(self, tables, "near_word", n, &offsets) : NULL;
    if (self->near_blob == NULL) {
        return -1;
    }
    size_t size = 8;
    while (size < (size_t)n * 2) {
        size *= 2;
    }
    self->near_slots = core_own(self, PyMem_Malloc(size * sizeof(NearSlot)));
    if (self->near_slots == NULL) {
        return -1;
    }
    self->near_mask = size - 1;
    for (size_t k = 0; k < size; k++) {
        self->near_slots[k].rank = -1;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        const unsigned char *word = self->near_blob + offsets[k];
        Py_ssize_t length = offsets[k + 1] - offsets[k];
        uint64_t hash = hash_bytes(word, length);
        NearSlot *slot = near_find(self, ranks[k], word, length, hash);
        *slot = (NearSlot){hash, offsets[k], length, ranks[k], weights[k]};
    }
    return 0;
}

static void
scratch_free(Scratch *sc)
{
    if (sc == NULL) {
        return;
    }
    void *parts[] = {sc->voc_seen, sc->voc_title, sc->voc_own, sc->held_stamp, sc->held, sc->name_stamp,
                     sc->title_stamp, sc->proper_stamp, sc->name_count, sc->name_title, sc->form_stamp,
                     sc->form_count, sc->titled, sc->tid_stamp, sc->tid_count, sc->set_stamp, sc->rule_stamp,
                     sc->rule_title, sc->class_count, sc->class_title};
    for (size_t k = 0; k < sizeof parts / sizeof parts[0]; k++) {
        PyMem_Free(parts[k]);
    }
    PyMem_Free(sc);
}

static Scratch *
scratch_new(const TagCore *c)
{
    Scratch *sc = PyMem_Calloc(1, sizeof(Scratch));
    if (sc == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    size_t V = (size_t)c->nvocab + 1, RM = (size_t)(c->nranks * c->nnames) + 1, M = (size_t)c->nnames + 1,
           F = (size_t)c->nforms + 1, T = (size_t)c->nterms + 1, S = (size_t)c->nsets + 1,
           R = (size_t)c->nranks + 1, C = (size_t)c->nclasses + 1;
    sc->voc_seen = PyMem_Calloc(V, sizeof(uint64_t));
    sc->voc_title = PyMem_Calloc(V, sizeof(uint64_t));
    sc->voc_own = PyMem_Calloc(V, sizeof(uint64_t));
    sc->held_stamp = PyMem_Calloc(RM, sizeof(uint64_t));
    sc->held = PyMem_Calloc(RM, sizeof(int32_t));
    sc->name_stamp = PyMem_Calloc(M, sizeof(uint64_t));
    sc->title_stamp = PyMem_Calloc(M, sizeof(uint64_t));
    sc->proper_stamp = PyMem_Calloc(M, sizeof(uint64_t));
    sc->name_count = PyMem_Calloc(M, sizeof(int32_t));
    sc->name_title = PyMem_Calloc(M, 1);
    sc->form_stamp = PyMem_Calloc(F, sizeof(uint64_t));
    sc->form_count = PyMem_Calloc(F, sizeof(int32_t));
    sc->titled = PyMem_Calloc(T, sizeof(uint64_t));
    sc->tid_stamp = PyMem_Calloc(T, sizeof(uint64_t));
    sc->tid_count = PyMem_Calloc(T, sizeof(int32_t));
    sc->set_stamp = PyMem_Calloc(S, sizeof(uint64_t));
    sc->rule_stamp = PyMem_Calloc(R, sizeof(uint64_t));
    sc->rule_title = PyMem_Calloc(R, sizeof(uint64_t));
    sc->class_count = PyMem_Calloc(C, sizeof(int32_t));
    sc->class_title = PyMem_Calloc(C, sizeof(int32_t));
    if (!sc->voc_seen || !sc->voc_title || !sc->voc_own || !sc->held_stamp || !sc->held || !sc->name_stamp ||
        !sc->title_stamp || !sc->proper_stamp || !sc->name_count || !sc->name_title || !sc->form_stamp ||
        !sc->form_count || !sc->titled || !sc->tid_stamp || !sc->tid_count || !sc->set_stamp ||
        !sc->rule_stamp || !sc->rule_title || !sc->class_count || !sc->class_title) {
        scratch_free(sc);
        PyErr_NoMemory();
        return NULL;
    }
    return sc;
}

static void
TagCore_dealloc(TagCore *self)
{
    scratch_free(self->scratch);
    Py_XDECREF(self->scanner);
    Py_XDECREF(self->vocab);
    Py_XDECREF(self->topic_ids);
    Py_XDECREF(self->term_names);
    Py_XDECREF(self->names);
    Py_XDECREF(self->class_terms);
    Py_XDECREF(self->k_topic);
    Py_XDECREF(self->k_term);
    Py_XDECREF(self->k_count);
    Py_XDECREF(self->k_in_title);
    Py_XDECREF(self->sense_prefix);
    Py_XDECREF(self->hit_template);
    for (Py_ssize_t k = 0; self->hit_templates != NULL && k < self->ntemplates; k++) {
        Py_XDECREF(self->hit_templates[k]);
    }
    PyMem_Free(self->hit_templates);
    for (int k = 0; k < self->nowned; k++) {
        PyMem_Free(self->owned[k]);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

#define I32(field, name, count, low, high)                                                 \
    if ((self->field = load_i32(self, tables, name, count, NULL, low, high)) == NULL) {   \
        goto fail;                                                                        \
    }
#define F64(field, name, count)                                                           \
    if ((self->field = load_floats(self, tables, name, count)) == NULL) {                 \
        goto fail;                                                                        \
    }
#define OFFSETS(field, name, rows, total)                                                 \
    if ((self->field = load_offsets(self, tables, name, rows, &(total))) == NULL) {       \
        goto fail;                                                                        \
    }

/* Whether the scanner's " word " keys (voc_key: key -> vocabulary word, or -1) cover every vocabulary word
   that can be a word (no separator in it), and the scanner folds as `fold` does (the Python side passes
   ASCII_LOWER_TO_SPACE to both): then the words between spaces of a story without bytes 0x85 and 0xA0 are
   its " word " matches. 1, 0, or -1 with an exception set. */
static int
vocab_covered(const TagCore *self)
{
    const Vocabulary *vocab = self->vocab;
    Py_ssize_t all_keys = self->api->nkeys(self->scanner), V = self->nvocab;
    if (vocab == NULL || !self->fold_is_formula) {
        return 0;
    }
    unsigned char *covered = PyMem_Calloc((size_t)V + 1, 1);
    if (covered == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t k = 0; k < all_keys; k++) {
        if (self->voc_key[k] >= 0) {
            covered[self->voc_key[k]] = 1;
        }
    }
    int all = 1;
    for (Py_ssize_t e = 0; e < vocab->count && all; e++) {
        const Word *w = &vocab->entries[e];
        int can_be_word = w->length > 0;
        for (Py_ssize_t j = 0; j < w->length && can_be_word; j++) {
            can_be_word = !IS_SEPARATOR[(unsigned char)vocab->keys[w->offset + j]];
        }
        all = !can_be_word || covered[w->name];
    }
    PyMem_Free(covered);
    return all;
}

static PyObject *
TagCore_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"scanner", "vocabulary", "tables", NULL};
    PyObject *scanner, *vocabulary, *tables;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO!:TagCore", kwlist, &scanner, &vocabulary, &PyDict_Type,
                                     &tables)) {
        return NULL;
    }
    const AutomatonAPI *api = PyCapsule_Import(AUTOMATON_CAPSULE, 0);
    if (api == NULL) {
        return NULL;
    }
    if (!PyObject_TypeCheck(scanner, api->type)) {
        PyErr_SetString(PyExc_TypeError, "TagCore: scanner must be an Automaton");
        return NULL;
    }
    if (vocabulary != Py_None && !PyObject_TypeCheck(vocabulary, &VocabularyType)) {
        PyErr_SetString(PyExc_TypeError, "TagCore: vocabulary must be a Vocabulary (or None)");
        return NULL;
    }
    TagCore *self = (TagCore *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    /* tp_alloc zeroes the object: dealloc is safe from here on */
    self->api = api;
    self->scanner = Py_NewRef(scanner);
    self->vocab = vocabulary == Py_None ? NULL : (Vocabulary *)Py_NewRef(vocabulary);
    self->k_topic = PyUnicode_InternFromString("topic");
    self->k_term = PyUnicode_InternFromString("term");
    self->k_count = PyUnicode_InternFromString("count");
    self->k_in_title = PyUnicode_InternFromString("in_title");
    self->sense_prefix = PyUnicode_InternFromString("sense:");
    if (!self->k_topic || !self->k_term || !self->k_count || !self->k_in_title || !self->sense_prefix) {
        goto fail;
    }
    PyObject *zero = PyLong_FromLong(0);
    self->hit_template = zero ? PyDict_New() : NULL;
    if (self->hit_template == NULL || PyDict_SetItem(self->hit_template, self->k_topic, Py_None) < 0 ||
        PyDict_SetItem(self->hit_template, self->k_term, Py_None) < 0 ||
        PyDict_SetItem(self->hit_template, self->k_count, zero) < 0 ||
        PyDict_SetItem(self->hit_template, self->k_in_title, Py_False) < 0) {
        Py_XDECREF(zero);
        goto fail;
    }
    Py_DECREF(zero);

    Py_buffer fold, keep;
    PyObject *fold_obj = PyDict_GetItemString(tables, "fold"), *keep_obj = PyDict_GetItemString(tables, "keep");
    if (fold_obj == NULL || keep_obj == NULL) {
        PyErr_SetString(PyExc_KeyError, "TagCore: tables fold and keep missing");
        goto fail;
    }
    if (PyObject_GetBuffer(fold_obj, &fold, PyBUF_SIMPLE) < 0) {
        goto fail;
    }
    int sized = fold.len == 256;
    if (sized) {
        memcpy(self->fold, fold.buf, 256);
    }
    PyBuffer_Release(&fold);
    if (PyObject_GetBuffer(keep_obj, &keep, PyBUF_SIMPLE) < 0) {
        goto fail;
    }
    sized = sized && keep.len == 256;
    if (sized) {
        memcpy(self->keep, keep.buf, 256);
    }
    PyBuffer_Release(&keep);
    if (!sized) {
        PyErr_SetString(PyExc_ValueError, "TagCore: fold and keep must be 256 bytes");
        goto fail;
    }
    self->fold_is_formula = 1;
    for (int b = 0; b < 256; b++) {
        self->fold_is_formula &= self->fold[b] == folded((unsigned char)b);
        self->low_controls |= self->fold[b] >= '\t' && self->fold[b] <= '\r';
    }
    if (load_param(tables, "longest", &self->longest, 1 << 20) < 0 ||
        load_param(tables, "before", &self->before, 1 << 20) < 0 ||
        load_param(tables, "after", &self->after, 1 << 20) < 0 ||
        load_param(tables, "reach", &self->reach, 1 << 28) < 0 ||
        load_param(tables, "words_chars", &self->words_chars, 1 << 20) < 0 ||
        load_param(tables, "near", &self->near, 1 << 20) < 0 ||
        load_param(tables, "near_words", &self->near_words, 1 << 20) < 0 ||
        load_param(tables, "near_chars", &self->near_chars, 1 << 28) < 0 ||
        load_param(tables, "lead_chars", &self->lead_chars, 1 << 28) < 0 ||
        load_param(tables, "sets", &self->nsets, INT32_MAX) < 0) {
        goto fail;
    }
    if ((self->topic_ids = load_strings(tables, "topic_ids", -1)) == NULL ||
        (self->names = load_strings(tables, "names", -1)) == NULL ||
        (self->term_names = load_strings(tables, "term_names", -1)) == NULL ||
        (self->class_terms = load_strings(tables, "class_terms", -1)) == NULL) {
        goto fail;
    }
    Py_ssize_t R = self->nranks = PyTuple_GET_SIZE(self->topic_ids);
    Py_ssize_t M = self->nnames = PyTuple_GET_SIZE(self->names);
    Py_ssize_t T = self->nterms = PyTuple_GET_SIZE(self->term_names);
    Py_ssize_t C = self->nclasses = PyTuple_GET_SIZE(self->class_terms);
    Py_ssize_t V = self->nvocab = self->vocab ? PyTuple_GET_SIZE(self->vocab->names) : 0;
    Py_ssize_t all_keys = api->nkeys(scanner), S = self->nsets, total;
    if (load_param(tables, "keys", &self->nkeys, all_keys < 0 ? 0 : all_keys) < 0) {
        goto fail; /* a scanner not initialized has -1 keys */
    }
    Py_ssize_t K = self->nkeys;
    if (load_param(tables, "forms", &self->nforms, INT32_MAX) < 0 ||
        load_param(tables, "exact_sets", &self->nexact, INT32_MAX) < 0 ||
        load_param(tables, "rules", &self->nrules, INT32_MAX) < 0) {
        goto fail;
    }
    Py_ssize_t F = self->nforms, E = self->nexact, RU = self->nrules;
    I32(key_len, "key_len", K, 0, self->longest);
    OFFSETS(ctx_off, "ctx_off", K, total);
    I32(ctx, "ctx", total, 0, S - 1);
    OFFSETS(plain_off, "plain_off", K, total);
    I32(plain, "plain", total, 0, T - 1);
    OFFSETS(chk_off, "chk_off", K, total);
    I32(chk_tid, "chk_tid", total, 0, T - 1);
    I32(chk_rank, "chk_rank", total, 0, R - 1);
    I32(chk_wait, "chk_wait", total, 0, 2);
    I32(chk_exact, "chk_exact", total, -1, E - 1);
    I32(chk_rule, "chk_rule", total, -1, RU - 1);
    OFFSETS(blk_off, "blk_off", K, total);
    I32(blk, "blk", total, 0, R - 1);
    OFFSETS(men_off, "men_off", K, total);
    I32(men_rank, "men_rank", total, 0, R - 1);
    I32(men_name, "men_name", total, 0, M - 1);
    I32(men_exact, "men_exact", total, -1, E - 1);
    I32(men_gate, "men_gate", total, -1, S - 1);
    I32(men_cand, "men_cand", total, 0, 1);
    I32(men_form, "men_form", total, 0, F - 1);
    F64(men_formw, "men_formw", total);
    OFFSETS(own_off, "own_off", F, total);
    I32(own, "own", total, 0, V - 1);
    OFFSETS(exact_off, "exact_off", E, total);
    if ((self->exact_blob = load_blob(self, tables, "exact_forms", total, &self->exact_form_off)) == NULL) {
        goto fail;
    }
    I32(rule_before, "rule_before", RU, 0, 1 << 20);
    I32(rule_after, "rule_after", RU, 0, 1 << 20);
    OFFSETS(rule_off, "rule_off", RU, total);
    I32(rule_set, "rule_set", total, 0, S - 1);
    I32(rule_wanted, "rule_wanted", total, 0, 1);
    I32(term_rank, "term_rank", T, 0, R - 1);
    I32(term_name, "term_name", T, 0, M - 1);
    I32(decided, "decided", R, 0, 1);
    for (Py_ssize_t r = 0; r < R; r++) {
        self->any_decided |= self->decided[r];
    }
    if (self->any_decided && self->vocab == NULL) {
        PyErr_SetString(PyExc_ValueError, "TagCore: sensed topics need a vocabulary");
        goto fail;
    }
    F64(bias, "bias", R);
    F64(threshold, "threshold", R);
    F64(w_terms, "w_terms", R);
    F64(w_candidates, "w_candidates", R);
    F64(w_length, "w_length", R);
    F64(w_dismissed, "w_dismissed", R);
    F64(w_all_dismissed, "w_all_dismissed", R);
    F64(w_rule_any, "w_rule_any", R);
    F64(w_rule_title, "w_rule_title", R);
    F64(w_once, "w_once", R);
    F64(w_late, "w_late", R);
    F64(w_class, "w_class", R * C);
    F64(w_cclass, "w_cclass", R * C);
    F64(w_title, "w_title", R * M);
    F64(w_proper, "w_proper", R * M);
    F64(w_unruled, "w_unruled", R * M);
    I32(class_order, "class_order", C, 0, INT32_MAX);
    I32(cclass_order, "cclass_order", C, 0, INT32_MAX);
    I32(voc_order, "voc_order", V, 0, INT32_MAX);
    OFFSETS(voc_class_off, "voc_class_off", V, total);
    I32(voc_class, "voc_class", total, 0, C - 1);
    if ((self->voc_class1 = core_own(self, PyMem_New(int32_t, V + 1))) == NULL) {
        goto fail;
    }
    for (Py_ssize_t v = 0; v < V; v++) {
        int none = self->voc_class_off[v] == self->voc_class_off[v + 1];
        self->voc_class1[v] = none ? (int32_t)C : self->voc_class[self->voc_class_off[v]];
    }
    /* micro weights: any sum of them stays below 2**53, so it converts to a double exactly */
    if ((self->voc_micro = load_ints(self, tables, "voc_micro", R * V, NULL, -(INT64_C(1) << 40),
                                     INT64_C(1) << 40)) == NULL) {
        goto fail;
    }
    for (Py_ssize_t r = 0; r < R; r++) {
        int64_t sum = 0;
        for (Py_ssize_t v = 0; v < V; v++) {
            int64_t w = self->voc_micro[r * V + v];
            sum += w < 0 ? -w : w;
            if (sum >= (INT64_C(1) << 53)) {
                PyErr_SetString(PyExc_ValueError, "TagCore: word weights too large to sum exactly");
                goto fail;
            }
        }
    }
    F64(voc_w, "voc_w", R * V);
    if (load_near(self, tables) < 0) {
        goto fail;
    }
    I32(dis_len, "dismissal_len", all_keys, -1, 1 << 20);
    for (Py_ssize_t k = 0; k < all_keys; k++) {
        self->any_dismissal |= self->dis_len[k] >= 0;
    }
    I32(voc_key, "vocab_key", all_keys, -1, V - 1);
    if ((self->vocab_in_scan = vocab_covered(self)) < 0) {
        goto fail;
    }
    self->ntemplates = R * (M + V + C) + T;
    if ((self->hit_templates = PyMem_Calloc((size_t)self->ntemplates + 1, sizeof(PyObject *))) == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    if ((self->scratch = scratch_new(self)) == NULL) {
        goto fail;
    }
    return (PyObject *)self;
fail:
    Py_DECREF(self);
    return NULL;
}

/* dst[:n] = src[:n].translate(fold) */
static void
fold_text(const TagCore *c, const unsigned char *src, unsigned char *dst, Py_ssize_t n)
{
    Py_ssize_t i = 0;
#if defined(__SSE2__)
    if (c->fold_is_formula) {
        const __m128i zero = _mm_setzero_si128(), space = _mm_set1_epi8(' '), bit = _mm_set1_epi8(0x20);
        for (; i + 16 <= n; i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(src + i));
            __m128i up = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('A' - 1)), _mm_cmplt_epi8(v, _mm_set1_epi8('Z' + 1)));
            __m128i lo = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('a' - 1)), _mm_cmplt_epi8(v, _mm_set1_epi8('z' + 1)));
            __m128i dg = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)), _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
            __m128i keep = _mm_or_si128(_mm_or_si128(up, lo), _mm_or_si128(dg, _mm_cmplt_epi8(v, zero)));
            __m128i lowered = _mm_or_si128(v, _mm_and_si128(up, bit));
            _mm_storeu_si128((__m128i *)(dst + i),
                             _mm_or_si128(_mm_and_si128(keep, lowered), _mm_andnot_si128(keep, space)));
        }
    }
#endif
    for (; i < n; i++) {
        dst[i] = c->fold[src[i]];
    }
}

/* --- one story */

#define VEC(T) struct { T *v; Py_ssize_t n, cap; }

/* room for at least `least` items (0: double the room) */
static int
vec_grow(void **v, Py_ssize_t *cap, size_t size, Py_ssize_t least)
{
    if (least && *cap >= least) {
        return 0;
    }
    Py_ssize_t wanted = *cap ? *cap * 2 : 16;
    if (wanted < least) {
        wanted = least;
    }
    if ((size_t)wanted > PY_SSIZE_T_MAX / size) {
        PyErr_NoMemory();
        return -1;
    }
    void *grown = PyMem_Realloc(*v, (size_t)wanted * size);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *v = grown;
    *cap = wanted;
    return 0;
}

#define PUSH(vec, ...)                                                                               \
    do {                                                                                             \
        if ((vec).n == (vec).cap && vec_grow((void **)&(vec).v, &(vec).cap, sizeof *(vec).v, 0) < 0) { \
            goto fail;                                                                               \
        }                                                                                            \
        (vec).v[(vec).n++] = (__typeof__(*(vec).v)){__VA_ARGS__};                                    \
    } while (0)

typedef struct {
    Py_ssize_t start, end;
    int32_t key;
} Blocked;

typedef struct {
    int32_t rank, tid;
    Py_ssize_t start, end;
} Later;

typedef struct {
    Py_ssize_t start, end;
    int32_t name, entry; /* entry: the mention table's row */
} Span;

typedef struct {
    Span *v;
    Py_ssize_t n, cap;
} Spans;

typedef struct {
    Py_ssize_t a, b;
} Range;

typedef struct {
    Py_ssize_t start, end;
    int32_t name, entry;
    unsigned char in_title, gone, candidate, proper;
} Found;

typedef struct {
    double value;
    int32_t order, vocab, klass; /* a word (vocab >= 0) or a class (klass >= 0) */
} Evidence;

typedef struct {
    int32_t rank;
    int64_t neg;
    int32_t tid;
} Row;

typedef struct {
    int32_t vocab;    /* a vocabulary word's " word " match: the word's index */
    int32_t in_title; /* the match ends before the separator */
} VocabMatch;

typedef struct {
    const TagCore *core;
    const unsigned char *raw;
    unsigned char *low;
    Py_ssize_t n, sep;
    AutomatonMatches m;
    Scratch *sc;
    uint64_t now;     /* the story's stamp */
    int have_present; /* sc->set_stamp marks the context sets with a phrase in the story */
    VEC(int32_t) kept;
    VEC(int32_t) found;
    VEC(Later) later;
    VEC(Blocked) blocked;
    VEC(Range) dismissal; /* (start, end) of every dismissal phrase, by end */
    VEC(Range) spots;
    VEC(VocabMatch) vocab; /* the " word " matches of vocabulary words (core->vocab_in_scan), by offset */
    int packed;            /* hits packed (tag()'s `packed`): put_hit appends a hit's four values */
} Story;

/* by start, then the longest first */
static int
cmp_start_longest(Py_ssize_t a_start, Py_ssize_t a_end, Py_ssize_t b_start, Py_ssize_t b_end)
{
    if (a_start != b_start) {
        return a_start < b_start ? -1 : 1;
    }
    return (a_end < b_end) - (a_end > b_end);
}

static int
cmp_later(const void *x, const void *y)
{
    const Later *a = x, *b = y;
    if (a->rank != b->rank) {
        return a->rank < b->rank ? -1 : 1;
    }
    int order = cmp_start_longest(a->start, a->end, b->start, b->end);
    return order ? order : (a->tid > b->tid) - (a->tid < b->tid);
}

static int
cmp_span(const void *x, const void *y)
{
    const Span *a = x, *b = y;
    int order = cmp_start_longest(a->start, a->end, b->start, b->end);
    return order ? order : (a->name > b->name) - (a->name < b->name);
}

static int
cmp_range(const void *x, const void *y)
{
    const Range *a = x, *b = y;
    if (a->a != b->a) {
        return a->a < b->a ? -1 : 1;
    }
    return (a->b > b->b) - (a->b < b->b);
}

static int
cmp_row(const void *x, const void *y)
{
    const Row *a = x, *b = y;
    if (a->rank != b->rank) {
        return a->rank < b->rank ? -1 : 1;
    }
    if (a->neg != b->neg) {
        return a->neg < b->neg ? -1 : 1;
    }
    return (a->tid > b->tid) - (a->tid < b->tid);
}

/* qsort(base, n, sizeof *base, cmp) for the few items a story's lists mostly hold: an insertion sort with the
   comparison inlined (lists come mostly in order); beyond SMALL_SORT items, qsort. Both keep equal items in
   their order (glibc's qsort is a merge sort), and every comparison here but cmp_span's is a total order. */
#define SMALL_SORT 32
#define SORT(base, count, cmp)                                                      \
    do {                                                                            \
        __typeof__(base) b_ = (base);                                               \
        Py_ssize_t n_ = (count);                                                    \
        if (n_ > SMALL_SORT) {                                                      \
            qsort(b_, (size_t)n_, sizeof *b_, cmp);                                 \
            break;                                                                  \
        }                                                                           \
        for (Py_ssize_t i_ = 1; i_ < n_; i_++) {                                    \
            __typeof__(*b_) x_ = b_[i_];                                            \
            Py_ssize_t j_ = i_;                                                     \
            while (j_ > 0 && cmp(&b_[j_ - 1], &x_) > 0) {                           \
                b_[j_] = b_[j_ - 1];                                                \
                j_--;                                                               \
            }                                                                       \
            b_[j_] = x_;                                                            \
        }                                                                           \
    } while (0)

/* len(norm[a:b].split()), counted up to `limit` */
static Py_ssize_t
words_between(const unsigned char *low, Py_ssize_t a, Py_ssize_t b, Py_ssize_t limit)
{
    Py_ssize_t count = 0;
    int in_word = 0;
    for (Py_ssize_t i = a; i < b && count < limit; i++) {
        int word = !IS_SEPARATOR[low[i]];
        count += word && !in_word;
        in_word = word;
    }
    return count;
}

/* _SENTENCE_END.search(raw, pos, endpos) is not None: (?:[^A-Z][.?!;]|[\r\n])\s */
static int
sentence_ends(const unsigned char *raw, Py_ssize_t pos, Py_ssize_t endpos)
{
    if (pos < 0) {
        pos = 0;
    }
    for (Py_ssize_t i = pos; i + 1 < endpos; i++) {
        unsigned char c = raw[i];
        if ((c == '\r' || c == '\n') && RE_SPACE[raw[i + 1]]) {
            return 1;
        }
        if (!(c >= 'A' && c <= 'Z') && i + 2 < endpos && SENTENCE_MARK[raw[i + 1]] && RE_SPACE[raw[i + 2]]) {
            return 1;
        }
    }
    return 0;
}

/* raw[start:end].translate(ASCII_TO_SPACE) is one of the forms of exact set `set` */
static int
exact_holds(const Story *st, int32_t set, Py_ssize_t start, Py_ssize_t end)
{
    const TagCore *c = st->core;
    for (int32_t f = c->exact_off[set]; f < c->exact_off[set + 1]; f++) {
        const unsigned char *form = c->exact_blob + c->exact_form_off[f];
        if (c->exact_form_off[f + 1] - c->exact_form_off[f] != end - start) {
            continue;
        }
        Py_ssize_t k = 0;
        while (k < end - start && c->keep[st->raw[start + k]] == form[k]) {
            k++;
        }
        if (k == end - start) {
            return 1;
        }
    }
    return 0;
}

static int
key_has_set(const TagCore *c, int32_t key, int32_t set)
{
    for (int32_t k = c->ctx_off[key]; k < c->ctx_off[key + 1]; k++) {
        if (c->ctx[k] == set) {
            return 1;
        }
    }
    return 0;
}

/* rules._rule_holds (without bounds) */
static int
rule_holds(const Story *st, Py_ssize_t i, Py_ssize_t start, Py_ssize_t end, int32_t rule)
{
    const TagCore *c = st->core;
    const AutomatonMatch *m = st->m.v;
    Py_ssize_t before = c->rule_before[rule], after = c->rule_after[rule];
    Py_ssize_t first = start - c->words_chars * before, last = end + c->words_chars * after;
    if (end < st->sep) {
        if (last > st->sep) {
            last = st->sep;
        }
    }
    else if (first < st->sep) {
        first = st->sep;
    }
    for (int32_t k = c->rule_off[rule]; k < c->rule_off[rule + 1]; k++) {
        int32_t set = c->rule_set[k];
        int found = 0;
        for (Py_ssize_t j = i - 1; j >= 0; j--) {
            Py_ssize_t c_end = m[j].at;
            if (c_end < first) {
                break;
            }
            if (c_end < start && key_has_set(c, m[j].key, set) &&
                words_between(st->low, c_end, start, before) < before) {
                found = 1;
                break;
            }
        }
        if (!found) {
            for (Py_ssize_t j = i + 1; j < st->m.n; j++) {
                Py_ssize_t c_end = m[j].at, c_start = c_end - c->key_len[m[j].key];
                if (c_start > last) {
                    if (c_end - c->longest > last) {
                        break;
                    }
                }
                else if (c_start > end && key_has_set(c, m[j].key, set) &&
                         words_between(st->low, end, c_start, after) < after) {
                    found = 1;
                    break;
                }
            }
        }
        if (found != c->rule_wanted[k]) {
            return 0;
        }
    }
    return 1;
}

/* Whether a blocking phrase of topic `rank` overlaps [start, end): the blocked phrases are ordered by end and
   none is longer than `longest`, so only those ending in (start, end + longest) are looked at. */
static int
is_blocked(const Story *st, int32_t rank, Py_ssize_t start, Py_ssize_t end)
{
    const TagCore *c = st->core;
    Py_ssize_t lo = 0, hi = st->blocked.n;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (st->blocked.v[mid].end > start) {
            hi = mid;
        }
        else {
            lo = mid + 1;
        }
    }
    for (Py_ssize_t k = lo; k < st->blocked.n && st->blocked.v[k].end - c->longest < end; k++) {
        const Blocked *b = &st->blocked.v[k];
        if (b->start < end) {
            for (int32_t x = c->blk_off[b->key]; x < c->blk_off[b->key + 1]; x++) {
                if (c->blk[x] == rank) {
                    return 1;
                }
            }
        }
    }
    return 0;
}

static void
ensure_present(Story *st)
{
    const TagCore *c = st->core;
    if (st->have_present) {
        return;
    }
    st->have_present = 1;
    for (Py_ssize_t i = 0; i < st->m.n; i++) {
        int32_t key = st->m.v[i].key;
        for (int32_t k = c->ctx_off[key]; k < c->ctx_off[key + 1]; k++) {
            st->sc->set_stamp[c->ctx[k]] = st->now;
        }
    }
}

/* Tagger._idle: 1 when the matches can tag nothing */
static int
story_idle(Story *st)
{
    const TagCore *c = st->core;
    for (Py_ssize_t i = 0; i < st->m.n; i++) {
        int32_t key = st->m.v[i].key;
        if (c->plain_off[key] < c->plain_off[key + 1] || c->chk_off[key] < c->chk_off[key + 1]) {
            return 0;
        }
        for (int32_t e = c->men_off[key]; e < c->men_off[key + 1]; e++) {
            int32_t gate = c->men_gate[e];
            if (gate < 0) {
                return 0;
            }
            ensure_present(st);
            if (st->sc->set_stamp[gate] == st->now) {
                return 0;
            }
        }
    }
    return 1;
}

/* Tagger._kept (and _resolve): kept, titled, found, blocked */
static int
story_kept(Story *st)
{
    const TagCore *c = st->core;
    const AutomatonMatch *m = st->m.v;
    int patience = 1; /* hits wait for blocking phrases only when one matched */
    for (Py_ssize_t i = 0; i < st->m.n; i++) {
        if (c->blk_off[m[i].key] < c->blk_off[m[i].key + 1]) {
            patience = 0;
            break;
        }
    }
    for (Py_ssize_t i = 0; i < st->m.n; i++) {
        int32_t key = m[i].key;
        Py_ssize_t end = m[i].at, start = end - c->key_len[key];
        for (int32_t k = c->plain_off[key]; k < c->plain_off[key + 1]; k++) {
            PUSH(st->kept, c->plain[k]);
            if (end < st->sep) {
                st->sc->titled[c->plain[k]] = st->now;
            }
        }
        if (c->men_off[key] < c->men_off[key + 1]) {
            PUSH(st->found, (int32_t)i);
        }
        for (int32_t k = c->chk_off[key]; k < c->chk_off[key + 1]; k++) {
            if (c->chk_exact[k] >= 0 && !exact_holds(st, c->chk_exact[k], start, end)) {
                continue;
            }
            if (c->chk_rule[k] >= 0 && !rule_holds(st, i, start, end, c->chk_rule[k])) {
                continue;
            }
            if (c->chk_wait[k] > patience) {
                PUSH(st->later, c->chk_rank[k], c->chk_tid[k], start, end);
                continue;
            }
            PUSH(st->kept, c->chk_tid[k]);
            if (end < st->sep) {
                st->sc->titled[c->chk_tid[k]] = st->now;
            }
        }
        if (c->blk_off[key] < c->blk_off[key + 1]) {
            PUSH(st->blocked, start, end, key);
        }
    }
    if (st->later.n) {
        SORT(st->later.v, st->later.n, cmp_later);
        int32_t covered_rank = -1;
        Py_ssize_t covered_end = -1;
        for (Py_ssize_t k = 0; k < st->later.n; k++) {
            const Later *l = &st->later.v[k];
            if (st->blocked.n && is_blocked(st, l->rank, l->start, l->end)) {
                continue;
            }
            if (l->rank != covered_rank || l->start >= covered_end) {
                covered_rank = l->rank;
                covered_end = l->end;
                PUSH(st->kept, l->tid);
                if (l->start < st->sep) {
                    st->sc->titled[l->tid] = st->now;
                }
            }
        }
    }
    return 0;
fail:
    return -1;
}

/* Tagger._dismissal_spots: the dismissal phrases within reach of a mention, sorted. Python scans the merged
   stretches around the mentions; the one scan found every phrase, and a phrase is one of a stretch's when its
   key (" phrase ") lies inside the stretch. */
static int
story_spots(Story *st, Spans *spans)
{
    const TagCore *c = st->core;
    VEC(Range) around = {NULL, 0, 0};
    VEC(Range) stretches = {NULL, 0, 0};
    for (Py_ssize_t r = 0; r < c->nranks; r++) {
        for (Py_ssize_t k = 0; k < spans[r].n; k++) {
            Py_ssize_t start = spans[r].v[k].start, end = spans[r].v[k].end;
            PUSH(around, start > c->reach ? start - c->reach : 0, c->reach + end < st->n ? c->reach + end : st->n);
        }
    }
    SORT(around.v, around.n, cmp_range);
    Py_ssize_t low = around.v[0].a, high = around.v[0].b;
    for (Py_ssize_t k = 1; k <= around.n; k++) {
        Py_ssize_t a = k < around.n ? around.v[k].a : st->n + 1, b = k < around.n ? around.v[k].b : 0;
        if (a > high) {
            PUSH(stretches, low, high);
            low = a;
            high = b;
        }
        else if (b > high) {
            high = b;
        }
    }
    Py_ssize_t k = 0; /* the stretches and the phrases are both in text order */
    for (Py_ssize_t j = 0; j < st->dismissal.n; j++) {
        Range phrase = st->dismissal.v[j]; /* its key runs from phrase.a - 1 to phrase.b (its closing space) */
        while (k < stretches.n && stretches.v[k].b <= phrase.b) {
            k++;
        }
        if (k == stretches.n) {
            break;
        }
        if (stretches.v[k].a <= phrase.a - 1) {
            PUSH(st->spots, phrase.a, phrase.b);
        }
    }
    if (st->spots.n > 1) {
        SORT(st->spots.v, st->spots.n, cmp_range);
    }
    PyMem_Free(around.v);
    PyMem_Free(stretches.v);
    return 0;
fail:
    PyMem_Free(around.v);
    PyMem_Free(stretches.v);
    return -1;
}

/* Tagger._dismissed */
static int
is_dismissed(const Story *st, Py_ssize_t start, Py_ssize_t end)
{
    const TagCore *c = st->core;
    int in_title = start < st->sep;
    Py_ssize_t from = start - c->words_chars * c->before - c->longest;
    Py_ssize_t lo = 0, hi = st->spots.n;
    while (lo < hi) { /* bisect_left(spots, (from,)) */
        Py_ssize_t mid = (lo + hi) / 2;
        if (st->spots.v[mid].a < from) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    for (Py_ssize_t k = lo; k < st->spots.n; k++) {
        Py_ssize_t s_start = st->spots.v[k].a, s_end = st->spots.v[k].b;
        if (s_start > end + c->words_chars * c->after) {
            break;
        }
        if ((s_start < st->sep) != in_title) {
            continue;
        }
        if (s_end <= start) {
            if (words_between(st->low, s_end, start, c->before) < c->before &&
                !sentence_ends(st->raw, s_end - 1, start)) {
                return 1;
            }
        }
        else if (s_start >= end && words_between(st->low, end, s_start, c->after) < c->after &&
                 !sentence_ends(st->raw, end - 1, s_start)) {
            return 1;
        }
    }
    return 0;
}

/* rules._inside_sentence */
static int
inside_sentence(const unsigned char *raw, Py_ssize_t start)
{
    Py_ssize_t from = start > 4 ? start - 4 : 0, to = start;
    while (to > from && STRIPPED[raw[to - 1]]) {
        to--;
    }
    return to > from && !OPENS_SENTENCE[raw[to - 1]];
}




/* Per-story lists of the sense model's inputs (the marks are in the Scratch) */
typedef struct {
    VEC(int32_t) words; /* vocabulary indices of the story's distinct known words */
    VEC(Found) mentions;
    VEC(Range) near;
    VEC(int32_t) distinct;
    VEC(int32_t) forms;
    VEC(int32_t) own; /* a sensed topic's own words (of its mentions' forms) that are among the story's words */
} Sense;

static void
sense_free(Sense *s)
{
    PyMem_Free(s->words.v);
    PyMem_Free(s->mentions.v);
    PyMem_Free(s->own.v);
    PyMem_Free(s->near.v);
    PyMem_Free(s->distinct.v);
    PyMem_Free(s->forms.v);
}

/* Bit k set: p[k] is a separator (IS_SEPARATOR), for k < 16. `controls`: \t \n \v \f \r may occur (a fold
   table other than ASCII_LOWER_TO_SPACE), else only space, 0x85 and 0xA0 can separate. */
static inline uint32_t
separators16(const unsigned char *p, int controls)
{
#if defined(__SSE2__)
    __m128i v = _mm_loadu_si128((const __m128i *)p);
    __m128i s = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')),
                                          _mm_cmpeq_epi8(v, _mm_set1_epi8((char)0x85))),
                             _mm_cmpeq_epi8(v, _mm_set1_epi8((char)0xa0)));
    if (controls) { /* signed compares: bytes >= 0x80 are below 9 */
        s = _mm_or_si128(s, _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8(8)), _mm_cmplt_epi8(v, _mm_set1_epi8(14))));
    }
    return (uint32_t)_mm_movemask_epi8(s);
#else
    (void)controls;
    uint32_t bits = 0;
    for (int k = 0; k < 16; k++) {
        bits |= (uint32_t)IS_SEPARATOR[p[k]] << k;
    }
    return bits;
#endif
}

/* Bit k set: p[k] is a separator, for k < 64 */
static inline uint64_t
separators64(const unsigned char *p, int controls)
{
    return (uint64_t)separators16(p, controls) | (uint64_t)separators16(p + 16, controls) << 16 |
           (uint64_t)separators16(p + 32, controls) << 32 | (uint64_t)separators16(p + 48, controls) << 48;
}

static inline int
lowest_bit(uint64_t bits) /* bits != 0 */
{
#if defined(__GNUC__)
    return __builtin_ctzll(bits);
#else
    int k = 0;
    while (!(bits & 1)) {
        bits >>= 1;
        k++;
    }
    return k;
#endif
}

/* The padding after a story's folded text (story.low): separators, so that sense_words finds no word there */
#define LOW_PADDING 80

/* The story's distinct vocabulary words (rules._words_of + Vocabulary.known, in the folded text), and which
   of them are a piece of the title between two spaces (_result's title_words). The words are found 64 bytes
   at a time: a mask of the separators gives where words start and end (they alternate), so the bytes are
   not looked at one by one. low[0] and low[n - 1] are spaces, and LOW_PADDING separators follow low[n]. */
static inline int
sense_words_in(Story *st, Sense *s, int controls)
{
    const TagCore *c = st->core;
    const Vocabulary *vocab = c->vocab;
    const unsigned char *low = st->low;
    uint64_t *seen = st->sc->voc_seen, *title = st->sc->voc_title, now = st->now;
    const Py_ssize_t n = st->n, sep = st->sep, longest = vocab->longest;
    uint64_t before = 1; /* whether the byte before the block is a separator */
    Py_ssize_t open = -1; /* the start of a word that runs on into the next block */
    for (Py_ssize_t at = 0; at < n; at += 64) {
        const uint64_t gaps = separators64(low + at, controls), after = gaps << 1 | before;
        before = gaps >> 63;
        uint64_t edges = (~gaps & after) | (gaps & ~after); /* word starts and word ends, alternating */
        while (edges) {
            Py_ssize_t start = open;
            if (start < 0) {
                start = at + lowest_bit(edges);
                edges &= edges - 1;
                if (!edges) {
                    open = start;
                    break;
                }
            }
            open = -1;
            const Py_ssize_t end = at + lowest_bit(edges), length = end - start;
            edges &= edges - 1;
            if (length > longest) {
                continue;
            }
            uint64_t lo, hi;
            word_head_padded(low + start, length, &lo, &hi);
            Py_ssize_t e = vocab_lookup(vocab, low + start, length, lo, hi);
            if (e < 0) {
                continue;
            }
            Py_ssize_t v = vocab->entries[e].name;
            if (seen[v] != now) {
                seen[v] = now;
                PUSH(s->words, (int32_t)v);
            }
            /* raw[0] and raw[sep - 1] are spaces: a title word has a byte before and after it */
            if (start < sep && low[start - 1] == ' ' && low[end] == ' ') {
                title[v] = now;
            }
        }
    }
    return 0;
fail:
    return -1;
}

/* sense_words from the scanner's " word " matches: where the folded text has no separator but the space
   (no byte 0x85 or 0xA0; vocab_in_scan: the fold keeps no control byte), its words are the pieces between
   spaces, each vocabulary word's found by its " word " key, in the text's order; a title word (before the
   separator) has a space on either side. */
static int
sense_words_scanned(Story *st, Sense *s)
{
    uint64_t *seen = st->sc->voc_seen, *title = st->sc->voc_title, now = st->now;
    if (vec_grow((void **)&s->words.v, &s->words.cap, sizeof *s->words.v, s->words.n + st->vocab.n + 1) < 0) {
        return -1;
    }
    /* first and repeated words come mixed: written each time, counted when new (no branch to mispredict) */
    for (Py_ssize_t k = 0; k < st->vocab.n; k++) {
        const VocabMatch m = st->vocab.v[k];
        const int fresh = seen[m.vocab] != now;
        seen[m.vocab] = now;
        s->words.v[s->words.n] = m.vocab;
        s->words.n += fresh;
        title[m.vocab] = m.in_title ? now : title[m.vocab];
    }
    return 0;
}

static int
sense_words(Story *st, Sense *s)
{
    if (st->core->vocab_in_scan && memchr(st->low, 0x85, (size_t)st->n) == NULL &&
        memchr(st->low, 0xa0, (size_t)st->n) == NULL) {
        return sense_words_scanned(st, s);
    }
    return st->core->low_controls ? sense_words_in(st, s, 1) : sense_words_in(st, s, 0);
}

/* Evidence candidates ranked as sorted((value, name), reverse=True): the top `EVIDENCE` kept */
#define EVIDENCE 3

static void
rank_evidence(Evidence *top, int *ntop, Evidence e)
{
    int k = *ntop;
    while (k > 0 && (top[k - 1].value < e.value || (top[k - 1].value == e.value && top[k - 1].order < e.order))) {
        if (k < EVIDENCE) {
            top[k] = top[k - 1];
        }
        k--;
    }
    if (k < EVIDENCE) {
        top[k] = e;
        if (*ntop < EVIDENCE) {
            (*ntop)++;
        }
    }
}

/* str.count of " word " in the normalized text: non-overlapping occurrences */
static Py_ssize_t
count_spaced(const unsigned char *low, Py_ssize_t n, const unsigned char *word, Py_ssize_t length)
{
    Py_ssize_t count = 0, i = 0;
    if (length == 0) {
        return 0;
    }
    while (i + length + 2 <= n) {
        /* the word's first byte, then its spaces and the rest */
        const unsigned char *at = memchr(low + i + 1, word[0], (size_t)(n - i - length - 1));
        if (at == NULL) {
            break;
        }
        Py_ssize_t k = at - low - 1; /* where " word " would start */
        if (low[k] == ' ' && low[k + length + 1] == ' ' && memcmp(low + k + 1, word, (size_t)length) == 0) {
            count++;
            i = k + length + 2;
        }
        else {
            i = k + 1;
        }
    }
    return count;
}

/* the template slots of a hit: a sensed topic's mention (rank, name), its word and class evidence (rank,
   vocabulary word), (rank, class), and a rule topic's term (its rank is the term's) */
#define HIT_NAME(c, r, name) ((r) * (c)->nnames + (name))
#define HIT_WORD(c, r, v) ((c)->nranks * (c)->nnames + (r) * (c)->nvocab + (v))
#define HIT_CLASS(c, r, k) ((c)->nranks * ((c)->nnames + (c)->nvocab) + (r) * (c)->nclasses + (k))
#define HIT_TERM(c, tid) ((c)->nranks * ((c)->nnames + (c)->nvocab + (c)->nclasses) + (tid))

/* Make slot's template, {"topic": topic, "term": term, "count": 1, "in_title": False}, unless it exists (a
   call made meanwhile, from a finalizer, may have made it). 0, or -1 with an exception set. */
static int
make_hit_template(const TagCore *c, Py_ssize_t slot, PyObject *topic, PyObject *term)
{
    PyObject *made = PyDict_Copy(c->hit_template), *one = PyLong_FromLong(1);
    if (made == NULL || one == NULL || PyDict_SetItem(made, c->k_topic, topic) < 0 ||
        PyDict_SetItem(made, c->k_term, term) < 0 || PyDict_SetItem(made, c->k_count, one) < 0) {
        Py_XDECREF(made);
        Py_XDECREF(one);
        return -1;
    }
    Py_DECREF(one);
    if (c->hit_templates[slot] == NULL) {
        c->hit_templates[slot] = made;
    }
    else {
        Py_DECREF(made);
    }
    return 0;
}

/* A new hit dict: a copy of slot's template (its keys' table copied whole, in the same order, topic and term
   set), with count and in_title replaced where they differ; the template is made first when missing. Cheaper
   than four insertions into a new dict, and than a copy of an empty template with every value replaced. */
static PyObject *
new_hit(const TagCore *c, Py_ssize_t slot, PyObject *topic, PyObject *term, Py_ssize_t count, int in_title)
{
    if (c->hit_templates[slot] == NULL && make_hit_template(c, slot, topic, term) < 0) {
        return NULL;
    }
    PyObject *hit = PyDict_Copy(c->hit_templates[slot]);
    if (hit == NULL) {
        return NULL;
    }
    if (count != 1) {
        PyObject *n = PyLong_FromSsize_t(count);
        if (n == NULL || PyDict_SetItem(hit, c->k_count, n) < 0) {
            Py_XDECREF(n);
            Py_DECREF(hit);
            return NULL;
        }
        Py_DECREF(n);
    }
    if (in_title && PyDict_SetItem(hit, c->k_in_title, Py_True) < 0) {
        Py_DECREF(hit);
        return NULL;
    }
    return hit;
}

static int
append_new(PyObject *list, PyObject *item);

/* Append one hit to `hits`: a new hit dict (new_hit), or, packed, its four values topic, term, count and
   in_title (the term as slot's template holds it: a sensed word's "sense:<word>" is made once). `term` may be
   NULL only where slot's template exists. 0, or -1 with an exception set. */
static int
put_hit(const TagCore *c, int packed, PyObject *hits, Py_ssize_t slot, PyObject *topic, PyObject *term,
        Py_ssize_t count, int in_title)
{
    if (!packed) {
        return append_new(hits, new_hit(c, slot, topic, term, count, in_title));
    }
    if (c->hit_templates[slot] == NULL && make_hit_template(c, slot, topic, term) < 0) {
        return -1;
    }
    PyObject *held = PyDict_GetItemWithError(c->hit_templates[slot], c->k_term); /* borrowed */
    if (held == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_SystemError, "hit template without a term");
        }
        return -1;
    }
    if (PyList_Append(hits, topic) < 0 || PyList_Append(hits, held) < 0 ||
        append_new(hits, PyLong_FromSsize_t(count)) < 0 || PyList_Append(hits, in_title ? Py_True : Py_False) < 0) {
        return -1;
    }
    return 0;
}

static int
append_new(PyObject *list, PyObject *item)
{
    if (item == NULL) {
        return -1;
    }
    int rc = PyList_Append(list, item);
    Py_DECREF(item);
    return rc;
}

/* One sensed topic: its mentions (overlaps resolved), their dismissal and near words, the model's score and,
   when it tags, its hits (mentions, then evidence) appended to `hits`. 1 tagged, 0 not, -1 error. */
static int
sense_topic(Story *st, Sense *s, int32_t r, Spans *spans, PyObject *hits)
{
    const TagCore *c = st->core;
    Scratch *sc = st->sc;
    const Py_ssize_t M = c->nnames, C = c->nclasses, V = c->nvocab;
    const uint64_t mine = ++sc->stamp; /* this topic's marks */
    const unsigned char *low = st->low;
    SORT(spans->v, spans->n, cmp_span);
    s->mentions.n = 0;
    s->near.n = 0;
    Py_ssize_t covered = -1, nnear = 0;
    for (Py_ssize_t k = 0; k < spans->n; k++) {
        const Span *sp = &spans->v[k];
        if (sp->start < covered) {
            continue;
        }
        Py_ssize_t start = sp->start, end = covered = sp->end;
        int gone = st->spots.n && is_dismissed(st, start, end);
        if (!gone && nnear < c->near_words) {
            /* norm[start - 48:start].rsplit(None, 2)[-2:], then norm[end:end + 48].split(None, 2)[:2] */
            Py_ssize_t from = start > c->near_chars ? start - c->near_chars : 0, i = start, nb = 0;
            Py_ssize_t mark = s->near.n;
            while (nb < c->near && i > from) {
                while (i > from && IS_SEPARATOR[low[i - 1]]) {
                    i--;
                }
                if (i == from) {
                    break;
                }
                Py_ssize_t b = i;
                while (i > from && !IS_SEPARATOR[low[i - 1]]) {
                    i--;
                }
                PUSH(s->near, i, b);
                nb++;
            }
            for (Py_ssize_t x = mark, y = s->near.n - 1; x < y; x++, y--) { /* in text order */
                Range w = s->near.v[x];
                s->near.v[x] = s->near.v[y];
                s->near.v[y] = w;
            }
            nnear += nb;
            Py_ssize_t to = end + c->near_chars < st->n ? end + c->near_chars : st->n, taken = 0;
            i = end;
            while (taken < c->near && i < to) {
                while (i < to && IS_SEPARATOR[low[i]]) {
                    i++;
                }
                if (i == to) {
                    break;
                }
                Py_ssize_t a = i;
                while (i < to && !IS_SEPARATOR[low[i]]) {
                    i++;
                }
                PUSH(s->near, a, i);
                nnear++;
                taken++;
            }
        }
        int proper = start > st->sep && st->raw[start] >= 'A' && st->raw[start] <= 'Z' &&
                     inside_sentence(st->raw, start);
        PUSH(s->mentions, start, end, sp->name, sp->entry, start < st->sep, (unsigned char)gone,
             (unsigned char)c->men_cand[sp->entry], (unsigned char)proper);
    }
    /* the words of the mentions' forms are not word features of this topic (those in the story listed) */
    s->own.n = 0;
    for (Py_ssize_t k = 0; k < s->mentions.n; k++) {
        int32_t form = c->men_form[s->mentions.v[k].entry];
        for (int32_t x = c->own_off[form]; x < c->own_off[form + 1]; x++) {
            int32_t v = c->own[x];
            if (sc->voc_own[v] != mine && sc->voc_seen[v] == st->now) {
                PUSH(s->own, v);
            }
            sc->voc_own[v] = mine;
        }
    }
    /* cue_features, summed in its order: sum(map(mul, weights, values)) */
    Py_ssize_t terms = 0, candidates = 0, dismissed = 0;
    int affirmed_term = 0;
    for (Py_ssize_t k = 0; k < s->mentions.n; k++) {
        const Found *f = &s->mentions.v[k];
        if (f->gone) {
            dismissed++;
        }
        else if (f->candidate) {
            candidates++;
        }
        else {
            terms++;
        }
        affirmed_term |= !(f->gone || f->candidate);
    }
    const double *w_class = affirmed_term ? c->w_class : c->w_cclass;
    double sum = 0.0;
    sum += c->w_terms[r] * log1p((double)terms);
    sum += c->w_candidates[r] * log1p((double)candidates);
    sum += c->w_length[r] * log1p((double)st->n);
    for (Py_ssize_t k = 0; k < C; k++) {
        if (sc->class_count[k] > 0) {
            sum += w_class[r * C + k] * log1p((double)sc->class_count[k]);
        }
    }
    if (dismissed) {
        sum += c->w_dismissed[r] * log1p((double)dismissed);
    }
    if (dismissed && !(terms || candidates)) {
        sum += c->w_all_dismissed[r] * 1.0;
    }
    else {
        for (Py_ssize_t k = 0; k < s->mentions.n; k++) { /* title: and proper: flags, first occurrence */
            const Found *f = &s->mentions.v[k];
            if (f->in_title && sc->title_stamp[f->name] != mine) {
                sc->title_stamp[f->name] = mine;
                sum += c->w_title[r * M + f->name] * 1.0;
            }
            if (f->proper && sc->proper_stamp[f->name] != mine) {
                sc->proper_stamp[f->name] = mine;
                sum += c->w_proper[r * M + f->name] * 1.0;
            }
        }
        s->forms.n = 0;
        for (Py_ssize_t k = 0; k < s->mentions.n; k++) { /* form: counts */
            int32_t form = c->men_form[s->mentions.v[k].entry];
            if (sc->form_stamp[form] != mine) {
                sc->form_stamp[form] = mine;
                sc->form_count[form] = 0;
                PUSH(s->forms, (int32_t)k);
            }
            sc->form_count[form]++;
        }
        for (Py_ssize_t k = 0; k < s->forms.n; k++) {
            int32_t entry = s->mentions.v[s->forms.v[k]].entry;
            sum += c->men_formw[entry] * log1p((double)sc->form_count[c->men_form[entry]]);
        }
        s->distinct.n = 0; /* near: the distinct words, without the separator */
        for (Py_ssize_t k = 0; k < s->near.n; k++) {
            const Range *w = &s->near.v[k];
            Py_ssize_t length = w->b - w->a;
            if (length == 1 && low[w->a] == 0xff) {
                continue;
            }
            int seen = 0;
            for (Py_ssize_t j = 0; j < s->distinct.n && !seen; j++) {
                const Range *o = &s->near.v[s->distinct.v[j]];
                seen = o->b - o->a == length && memcmp(low + o->a, low + w->a, (size_t)length) == 0;
            }
            if (seen) {
                continue;
            }
            PUSH(s->distinct, (int32_t)k);
            const NearSlot *slot = near_find(c, r, low + w->a, length, hash_bytes(low + w->a, length));
            sum += (slot->rank < 0 ? 0.0 : slot->weight) * 1.0;
        }
        for (Py_ssize_t k = 0; k < s->mentions.n; k++) { /* unruled: mentions of terms beyond their rule hits */
            const Found *f = &s->mentions.v[k];
            if (f->candidate) {
                continue;
            }
            if (sc->name_stamp[f->name] != mine) {
                sc->name_stamp[f->name] = mine;
                sc->name_count[f->name] = 0;
            }
            sc->name_count[f->name]++;
        }
        for (Py_ssize_t k = 0; k < s->mentions.n; k++) { /* in the order of their first mention */
            const Found *f = &s->mentions.v[k];
            if (f->candidate || sc->name_count[f->name] == 0) {
                continue;
            }
            int32_t n = sc->name_count[f->name];
            int32_t held = sc->held_stamp[r * M + f->name] == st->now ? sc->held[r * M + f->name] : 0;
            sc->name_count[f->name] = 0;
            if (held < n) {
                sum += c->w_unruled[r * M + f->name] * log1p((double)(n - held));
            }
        }
        if (sc->rule_stamp[r] == st->now) {
            sum += c->w_rule_any[r] * 1.0;
            if (sc->rule_title[r] == st->now) {
                sum += c->w_rule_title[r] * 1.0;
            }
        }
        if (terms + candidates == 1) {
            sum += c->w_once[r] * 1.0;
        }
        int early = 0; /* late: no affirmed mention in the title or the body's first lead_chars */
        for (Py_ssize_t k = 0; k < s->mentions.n && !early; k++) {
            early = !s->mentions.v[k].gone && s->mentions.v[k].start < st->sep + c->lead_chars;
        }
        if (!early) {
            sum += c->w_late[r] * 1.0;
        }
    }
    int64_t micro = 0;
    for (Py_ssize_t k = 0; k < s->words.n; k++) {
        int32_t v = s->words.v[k];
        if (sc->voc_own[v] != mine) {
            micro += c->voc_micro[r * V + v];
        }
    }
    double z = c->bias[r] + (double)micro / 1000000.0 + sum;
    double probability;
    if (z >= 0) {
        probability = 1.0 / (1.0 + exp(-z));
    }
    else {
        double e = exp(z);
        probability = e / (1.0 + e);
    }
    if (!(probability >= c->threshold[r])) {
        return 0;
    }
    /* tagged: its mentions by name (most first, then by name), then its strongest positive features */
    PyObject *topic = PyTuple_GET_ITEM(c->topic_ids, r);
    const uint64_t listed = ++sc->stamp;
    s->distinct.n = 0;
    for (Py_ssize_t k = 0; k < s->mentions.n; k++) {
        const Found *f = &s->mentions.v[k];
        if (sc->name_stamp[f->name] != listed) {
            sc->name_stamp[f->name] = listed;
            sc->name_count[f->name] = 0;
            sc->name_title[f->name] = 0;
            PUSH(s->distinct, f->name);
        }
        sc->name_count[f->name]++;
        sc->name_title[f->name] |= f->in_title;
    }
    for (Py_ssize_t k = 1; k < s->distinct.n; k++) { /* insertion sort by (-count, name): a few names */
        int32_t x = s->distinct.v[k];
        Py_ssize_t j = k;
        while (j > 0) {
            int32_t y = s->distinct.v[j - 1];
            if (sc->name_count[y] > sc->name_count[x] || (sc->name_count[y] == sc->name_count[x] && y < x)) {
                break;
            }
            s->distinct.v[j] = y;
            j--;
        }
        s->distinct.v[j] = x;
    }
    for (Py_ssize_t k = 0; k < s->distinct.n; k++) {
        int32_t name = s->distinct.v[k];
        if (put_hit(c, st->packed, hits, HIT_NAME(c, r, name), topic, PyTuple_GET_ITEM(c->names, name),
                    sc->name_count[name], sc->name_title[name]) < 0) {
            goto fail;
        }
    }
    Evidence top[EVIDENCE];
    int ntop = 0;
    double least = 0; /* once EVIDENCE are kept, a word below the last cannot enter: most words skip here */
    for (Py_ssize_t k = 0; k < s->words.n; k++) {
        int32_t v = s->words.v[k];
        const double w = c->voc_w[r * V + v];
        if (w < least || w <= 0 || sc->voc_own[v] == mine) {
            continue;
        }
        rank_evidence(top, &ntop, (Evidence){w, c->voc_order[v], v, -1});
        least = ntop == EVIDENCE ? top[EVIDENCE - 1].value : 0;
    }
    const int32_t *order = affirmed_term ? c->class_order : c->cclass_order;
    for (Py_ssize_t k = 0; k < C; k++) {
        if (sc->class_count[k] > 0) {
            double value = w_class[r * C + k] * log1p((double)sc->class_count[k]);
            if (value > 0) {
                rank_evidence(top, &ntop, (Evidence){value, order[k], -1, (int32_t)k});
            }
        }
    }
    for (int k = 0; k < ntop; k++) {
        PyObject *term = NULL;
        Py_ssize_t count, slot;
        int in_title = 0;
        if (top[k].vocab >= 0) {
            int32_t v = top[k].vocab;
            PyObject *word = PyTuple_GET_ITEM(c->vocab->words, v);
            count = count_spaced(low, st->n, (const unsigned char *)PyBytes_AS_STRING(word), PyBytes_GET_SIZE(word));
            in_title = sc->voc_title[v] == st->now;
            slot = HIT_WORD(c, r, v);
            if (c->hit_templates[slot] == NULL) { /* its term "sense:<word>" is made once, with the template */
                term = PyUnicode_Concat(c->sense_prefix, PyTuple_GET_ITEM(c->vocab->names, v));
                if (term == NULL) {
                    goto fail;
                }
            }
        }
        else { /* the class's words among the story's words that are not the topic's own: the story's count
                  (TagCore_tag's) less the topic's own words in the class; in the title likewise */
            const int32_t klass = top[k].klass;
            count = sc->class_count[klass];
            Py_ssize_t titled = sc->class_title[klass];
            for (Py_ssize_t j = 0; j < s->own.n; j++) {
                int32_t v = s->own.v[j];
                Py_ssize_t in = c->voc_class1[v] == klass;
                for (int32_t x = c->voc_class_off[v] + 1; x < c->voc_class_off[v + 1]; x++) {
                    in += c->voc_class[x] == klass;
                }
                count -= in;
                titled -= sc->voc_title[v] == st->now ? in : 0;
            }
            in_title = titled > 0;
            slot = HIT_CLASS(c, r, klass);
            term = Py_NewRef(PyTuple_GET_ITEM(c->class_terms, klass));
        }
        int put = put_hit(c, st->packed, hits, slot, topic, term, count > 1 ? count : 1, in_title);
        Py_XDECREF(term);
        if (put < 0) {
            goto fail;
        }
    }
    return 1;
fail:
    return -1;
}

/* text.prepare_raw in one pass: b" title \xff body " in UTF-8 (surrogates passed), each non-ASCII separator
   (text._SEPARATOR_ENDS: no-break space, dashes, curly quotes, ellipsis, guillemets) one space. */
static inline unsigned char *
put_wide(unsigned char *out, Py_UCS4 ch)
{
    if (ch == 0xa0 || ch == 0xab || ch == 0xbb || (ch >= 0x2010 && ch <= 0x2014) || ch == 0x2018 || ch == 0x2019 ||
        ch == 0x201c || ch == 0x201d || ch == 0x2026) {
        *out++ = ' ';
    }
    else if (ch < 0x800) {
        *out++ = (unsigned char)(0xc0 | (ch >> 6));
        *out++ = (unsigned char)(0x80 | (ch & 0x3f));
    }
    else if (ch < 0x10000) {
        *out++ = (unsigned char)(0xe0 | (ch >> 12));
        *out++ = (unsigned char)(0x80 | ((ch >> 6) & 0x3f));
        *out++ = (unsigned char)(0x80 | (ch & 0x3f));
    }
    else {
        *out++ = (unsigned char)(0xf0 | (ch >> 18));
        *out++ = (unsigned char)(0x80 | ((ch >> 12) & 0x3f));
        *out++ = (unsigned char)(0x80 | ((ch >> 6) & 0x3f));
        *out++ = (unsigned char)(0x80 | (ch & 0x3f));
    }
    return out;
}

/* characters [k, to) of a kind's array */
#define PUT_CHARS_OF(type, name)                                                         \
    static unsigned char *name(unsigned char *out, const type *chars, Py_ssize_t k, Py_ssize_t to) \
    {                                                                                    \
        for (; k < to; k++) {                                                            \
            Py_UCS4 ch = chars[k];                                                       \
            if (ch < 0x80) {                                                             \
                *out++ = (unsigned char)ch;                                              \
            }                                                                            \
            else {                                                                       \
                out = put_wide(out, ch);                                                 \
            }                                                                            \
        }                                                                                \
        return out;                                                                      \
    }
PUT_CHARS_OF(Py_UCS1, put_ucs1)
PUT_CHARS_OF(Py_UCS2, put_ucs2)
PUT_CHARS_OF(Py_UCS4, put_ucs4)

/* Runs of 16 ASCII characters copied at once (SSE2; without it, none): the new k */
static Py_ssize_t
put_ascii_ucs1(unsigned char **out, const Py_UCS1 *chars, Py_ssize_t k, Py_ssize_t n)
{
#if defined(__SSE2__)
    for (; k + 16 <= n; k += 16, *out += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(chars + k));
        if (_mm_movemask_epi8(v)) {
            break;
        }
        _mm_storeu_si128((__m128i *)*out, v);
    }
#else
    (void)out, (void)chars, (void)n;
#endif
    return k;
}

static Py_ssize_t
put_ascii_ucs2(unsigned char **out, const Py_UCS2 *chars, Py_ssize_t k, Py_ssize_t n)
{
#if defined(__SSE2__)
    const __m128i high = _mm_set1_epi16((short)0xff80);
    for (; k + 16 <= n; k += 16, *out += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(chars + k));
        __m128i b = _mm_loadu_si128((const __m128i *)(chars + k + 8));
        __m128i any = _mm_and_si128(_mm_or_si128(a, b), high);
        if (_mm_movemask_epi8(_mm_cmpeq_epi16(any, _mm_setzero_si128())) != 0xffff) {
            break;
        }
        _mm_storeu_si128((__m128i *)*out, _mm_packus_epi16(a, b));
    }
#else
    (void)out, (void)chars, (void)n;
#endif
    return k;
}

/* The UTF-8 of `text` (separators as spaces) at `out`; returns the end of what it wrote (at most 4 bytes a
   character). ASCII runs go 16 characters at a time, the rest one by one, 16 at a time. */
static unsigned char *
put_utf8(unsigned char *out, PyObject *text)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), k = 0;
    const void *data = PyUnicode_DATA(text);
    if (PyUnicode_IS_ASCII(text)) {
        memcpy(out, data, (size_t)n);
        return out + n;
    }
    switch (PyUnicode_KIND(text)) {
    case PyUnicode_1BYTE_KIND:
        while (k < n) {
            k = put_ascii_ucs1(&out, data, k, n);
            Py_ssize_t to = k + 16 < n ? k + 16 : n;
            out = put_ucs1(out, data, k, to);
            k = to;
        }
        return out;
    case PyUnicode_2BYTE_KIND:
        while (k < n) {
            k = put_ascii_ucs2(&out, data, k, n);
            Py_ssize_t to = k + 16 < n ? k + 16 : n;
            out = put_ucs2(out, data, k, to);
            k = to;
        }
        return out;
    default:
        return put_ucs4(out, data, 0, n);
    }
}

/* prepare_raw's (raw, sep) into a new PyMem buffer (*raw, *n); -1 with an exception set */
static int
prepare(PyObject *title, PyObject *body, unsigned char **raw, Py_ssize_t *n, Py_ssize_t *sep)
{
    if (!PyUnicode_Check(title) || !PyUnicode_Check(body)) {
        PyErr_SetString(PyExc_TypeError, "title and body must be str");
        return -1;
    }
    Py_ssize_t a = PyUnicode_GET_LENGTH(title), b = PyUnicode_GET_LENGTH(body);
    if (a > (PY_SSIZE_T_MAX - 16) / 8 || b > (PY_SSIZE_T_MAX - 16) / 8 - a) {
        PyErr_NoMemory();
        return -1;
    }
    unsigned char *buf = PyMem_Malloc((size_t)(4 * (a + b) + 6));
    if (buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    unsigned char *out = buf;
    *out++ = ' ';
    out = put_utf8(out, title);
    *out++ = ' ';
    *sep = out - buf;
    *out++ = 0xff;
    *out++ = ' ';
    out = put_utf8(out, body);
    *out++ = ' ';
    *raw = buf;
    *n = out - buf;
    return 0;
}

static PyObject *
accel_prepare_raw(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *title, *body;
    if (!PyArg_ParseTuple(args, "UU:prepare_raw", &title, &body)) {
        return NULL;
    }
    unsigned char *raw;
    Py_ssize_t n, sep;
    if (prepare(title, body, &raw, &n, &sep) < 0) {
        return NULL;
    }
    PyObject *out = Py_BuildValue("(y#n)", (const char *)raw, n, sep);
    PyMem_Free(raw);
    return out;
}

static PyObject *
TagCore_tag(TagCore *self, PyObject *args)
{
    PyObject *title, *body;
    int packed = 0;
    if (!PyArg_ParseTuple(args, "UU|p:tag", &title, &body, &packed)) {
        return NULL;
    }
    const TagCore *c = self;
    unsigned char *raw = NULL;
    Story st = {.core = c, .packed = packed};
    Sense s;
    memset(&s, 0, sizeof s);
    Spans *spans = NULL;
    PyObject **sensed = NULL; /* per rank: the hits of a tagged sensed topic */
    Row *rows = NULL;
    PyObject *topics = NULL, *hits = NULL, *out = NULL;
    Scratch *sc = self->scratch; /* a call made while this one runs (from a finalizer) gets its own */
    self->scratch = NULL;
    if (sc == NULL && (sc = scratch_new(c)) == NULL) {
        return NULL;
    }
    st.sc = sc;
    st.now = ++sc->stamp;
    if (prepare(title, body, &raw, &st.n, &st.sep) < 0) {
        goto fail;
    }
    st.raw = raw;
    if (c->api->matches(c->scanner, st.raw, 0, st.n, &st.m) < 0) {
        goto fail;
    }
    { /* the tagger's keys' matches stay in st.m, the dismissal phrases' go to st.dismissal, the vocabulary
         words' to st.vocab. The kinds come mixed, so each match is written to all three and counted where it
         belongs: no branch to mispredict. */
        if (vec_grow((void **)&st.dismissal.v, &st.dismissal.cap, sizeof *st.dismissal.v, st.m.n + 1) < 0 ||
            vec_grow((void **)&st.vocab.v, &st.vocab.cap, sizeof *st.vocab.v, st.m.n + 1) < 0) {
            goto fail;
        }
        Py_ssize_t kept = 0;
        for (Py_ssize_t i = 0; i < st.m.n; i++) {
            const AutomatonMatch m = st.m.v[i];
            const int32_t phrase = c->dis_len[m.key], word = c->voc_key[m.key];
            st.dismissal.v[st.dismissal.n] = (Range){m.at - phrase, m.at};
            st.dismissal.n += phrase >= 0;
            st.vocab.v[st.vocab.n] = (VocabMatch){word, m.at < st.sep};
            st.vocab.n += word >= 0;
            st.m.v[kept] = m;
            kept += m.key < c->nkeys;
        }
        st.m.n = kept;
    }
    if (story_idle(&st)) {
        goto empty;
    }
    st.low = PyMem_Malloc((size_t)st.n + LOW_PADDING);
    if (st.low == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    fold_text(c, st.raw, st.low, st.n);
    memset(st.low + st.n, ' ', LOW_PADDING); /* sense_words reads 64 bytes at a time */
    if (story_kept(&st) < 0) {
        goto fail;
    }
    if (!(st.kept.n || st.found.n)) {
        goto empty;
    }
    const Py_ssize_t R = c->nranks, M = c->nnames;
    sensed = PyMem_Calloc((size_t)R, sizeof(PyObject *));
    if (sensed == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    if (st.found.n && c->any_decided) { /* Tagger._inputs and the model's verdicts */
        spans = PyMem_Calloc((size_t)R, sizeof *spans);
        if (spans == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        int any = 0;
        for (Py_ssize_t k = 0; k < st.found.n; k++) {
            Py_ssize_t i = st.found.v[k];
            int32_t key = st.m.v[i].key;
            Py_ssize_t end = st.m.v[i].at, start = end - c->key_len[key];
            for (int32_t e = c->men_off[key]; e < c->men_off[key + 1]; e++) {
                int32_t rank = c->men_rank[e];
                if (c->men_exact[e] >= 0 && !exact_holds(&st, c->men_exact[e], start, end)) {
                    continue;
                }
                if (st.blocked.n && is_blocked(&st, rank, start, end)) {
                    continue;
                }
                if (c->men_gate[e] >= 0) {
                    ensure_present(&st);
                    if (sc->set_stamp[c->men_gate[e]] != st.now) {
                        continue;
                    }
                }
                PUSH(spans[rank], start, end, c->men_name[e], e);
                any = 1;
            }
        }
        if (any) {
            if (c->any_dismissal && story_spots(&st, spans) < 0) {
                goto fail;
            }
            for (Py_ssize_t k = 0; k < st.kept.n; k++) { /* rule hits of the sensed topics, by term name */
                int32_t tid = st.kept.v[k], r = c->term_rank[tid];
                Py_ssize_t at = r * M + c->term_name[tid];
                if (sc->held_stamp[at] != st.now) {
                    sc->held_stamp[at] = st.now;
                    sc->held[at] = 0;
                }
                sc->held[at]++;
                sc->rule_stamp[r] = st.now;
                if (sc->titled[tid] == st.now) {
                    sc->rule_title[r] = st.now;
                }
            }
            if (sense_words(&st, &s) < 0) {
                goto fail;
            }
            memset(sc->class_count, 0, sizeof(int32_t) * (size_t)(c->nclasses + 1));
            memset(sc->class_title, 0, sizeof(int32_t) * (size_t)(c->nclasses + 1));
            for (Py_ssize_t k = 0; k < s.words.n; k++) {
                /* the first class counted with no branch (words with and without one come mixed), the
                   rest (words of several classes: few) by a loop; the title's words counted apart too */
                int32_t v = s.words.v[k];
                const int32_t titled = sc->voc_title[v] == st.now;
                sc->class_count[c->voc_class1[v]]++;
                sc->class_title[c->voc_class1[v]] += titled;
                for (int32_t x = c->voc_class_off[v] + 1; x < c->voc_class_off[v + 1]; x++) {
                    sc->class_count[c->voc_class[x]]++;
                    sc->class_title[c->voc_class[x]] += titled;
                }
            }
            for (Py_ssize_t r = 0; r < R; r++) {
                if (!spans[r].n) {
                    continue;
                }
                if ((sensed[r] = PyList_New(0)) == NULL) {
                    goto fail;
                }
                int tagged = sense_topic(&st, &s, (int32_t)r, &spans[r], sensed[r]);
                if (tagged < 0) {
                    goto fail;
                }
                if (!tagged) {
                    Py_CLEAR(sensed[r]);
                }
            }
        }
    }
    /* Tagger._result: rule topics by (rank, -count, term id), a tagged sensed topic at its rank */
    rows = PyMem_Malloc(sizeof(Row) * (size_t)(st.kept.n + R + 1));
    topics = PyList_New(0);
    hits = PyList_New(0);
    if (rows == NULL || topics == NULL || hits == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_NoMemory();
        }
        goto fail;
    }
    Py_ssize_t nrows = 0;
    const uint64_t counted = ++sc->stamp;
    for (Py_ssize_t k = 0; k < st.kept.n; k++) {
        int32_t tid = st.kept.v[k];
        if (c->decided[c->term_rank[tid]]) {
            continue;
        }
        if (sc->tid_stamp[tid] != counted) {
            sc->tid_stamp[tid] = counted;
            sc->tid_count[tid] = 0;
            rows[nrows++] = (Row){c->term_rank[tid], 0, tid};
        }
        sc->tid_count[tid]++;
    }
    for (Py_ssize_t k = 0; k < nrows; k++) {
        rows[k].neg = -(int64_t)sc->tid_count[rows[k].tid];
    }
    for (Py_ssize_t r = 0; r < R; r++) {
        if (sensed[r] != NULL) {
            rows[nrows++] = (Row){(int32_t)r, 0, -1};
        }
    }
    SORT(rows, nrows, cmp_row);
    int32_t last = -1;
    for (Py_ssize_t k = 0; k < nrows; k++) {
        PyObject *topic = PyTuple_GET_ITEM(c->topic_ids, rows[k].rank);
        if (rows[k].tid < 0) {
            if (PyList_Append(topics, topic) < 0) {
                goto fail;
            }
            Py_ssize_t at = PyList_GET_SIZE(hits);
            if (PyList_SetSlice(hits, at, at, sensed[rows[k].rank]) < 0) {
                goto fail;
            }
        }
        else {
            if (rows[k].rank != last && PyList_Append(topics, topic) < 0) {
                goto fail;
            }
            if (put_hit(c, st.packed, hits, HIT_TERM(c, rows[k].tid), topic,
                        PyTuple_GET_ITEM(c->term_names, rows[k].tid), (Py_ssize_t)-rows[k].neg,
                        sc->titled[rows[k].tid] == st.now) < 0) {
                goto fail;
            }
        }
        last = rows[k].rank;
    }
    if (packed) {
        Py_SETREF(hits, PyList_AsTuple(hits));
        if (hits == NULL) {
            goto fail;
        }
    }
    out = PyTuple_Pack(2, topics, hits);
    goto done;
empty:
    topics = PyList_New(0);
    hits = packed ? PyTuple_New(0) : PyList_New(0);
    if (topics && hits) {
        out = PyTuple_Pack(2, topics, hits);
    }
    goto done;
fail:
    out = NULL;
done:
    Py_XDECREF(topics);
    Py_XDECREF(hits);
    if (sensed != NULL) {
        for (Py_ssize_t r = 0; r < c->nranks; r++) {
            Py_XDECREF(sensed[r]);
        }
        PyMem_Free(sensed);
    }
    if (spans != NULL) {
        for (Py_ssize_t r = 0; r < c->nranks; r++) {
            PyMem_Free(spans[r].v);
        }
        PyMem_Free(spans);
    }
    sense_free(&s);
    PyMem_Free(rows);
    PyMem_Free(raw);
    PyMem_Free(st.m.v);
    PyMem_Free(st.low);
    PyMem_Free(st.kept.v);
    PyMem_Free(st.found.v);
    PyMem_Free(st.later.v);
    PyMem_Free(st.blocked.v);
    PyMem_Free(st.spots.v);
    PyMem_Free(st.dismissal.v);
    PyMem_Free(st.vocab.v);
    if (self->scratch == NULL) {
        self->scratch = sc;
    }
    else {
        scratch_free(sc);
    }
    return out;
}

static PyMethodDef TagCore_methods[] = {
    {"tag", (PyCFunction)TagCore_tag, METH_VARARGS,
     "tag(title: str, body: str, packed: bool = False) -> (topics, hits): Tagger.tag(); packed: hits as one\n"
     "flat tuple (topic, term, count, in_title, topic, ...) instead of a list of dicts."},
    {NULL, NULL, 0, NULL},
};

static PyObject *
TagCore_vocab_in_scan(TagCore *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->vocab_in_scan);
}

static PyGetSetDef TagCore_getset[] = {
    {"vocab_in_scan", (getter)TagCore_vocab_in_scan, NULL,
     "whether the scan's \" word \" keys give the vocabulary words (else a lookup of each word)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject TagCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pipeline.tagging._accel.TagCore",
    .tp_doc = "TagCore(scanner, vocabulary, tables): Tagger.tag() compiled (see rules.Tagger).",
    .tp_basicsize = sizeof(TagCore),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = TagCore_new,
    .tp_dealloc = (destructor)TagCore_dealloc,
    .tp_methods = TagCore_methods,
    .tp_getset = TagCore_getset,
};

static PyMethodDef accel_functions[] = {
    {"prepare_raw", (PyCFunction)accel_prepare_raw, METH_VARARGS,
     "prepare_raw(title: str, body: str) -> (raw: bytes, sep: int): text.prepare_raw, in one pass."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef accel_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pipeline.tagging._accel",
    .m_doc = "The tagger's tag() and the sense model's word lookup in C (optional: rules.py has them in Python, "
             "same output).",
    .m_size = -1,
    .m_methods = accel_functions,
};

PyMODINIT_FUNC
PyInit__accel(void)
{
    if (PyType_Ready(&VocabularyType) < 0 || PyType_Ready(&TagCoreType) < 0) {
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
    Py_INCREF(&TagCoreType);
    if (PyModule_AddObject(module, "TagCore", (PyObject *)&TagCoreType) < 0) {
        Py_DECREF(&TagCoreType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
