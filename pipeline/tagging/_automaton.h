/* The C interface of pipeline.tagging._automaton for other extensions (pipeline/tagging/_accel.c): the matches
   of an Automaton as (offset, key index) pairs in a C array, no Python object per match. Import it with
   PyCapsule_Import(AUTOMATON_CAPSULE, 0). */
#ifndef WIREFEED_AUTOMATON_H
#define WIREFEED_AUTOMATON_H

#include <Python.h>
#include <stdint.h>

#define AUTOMATON_CAPSULE "pipeline.tagging._automaton._C_API"

typedef struct {
    Py_ssize_t at; /* offset of the key's last byte */
    int32_t key;   /* index of the key in the Automaton's keys */
} AutomatonMatch;

/* A growable array of matches (PyMem; the caller frees `v`). */
typedef struct {
    AutomatonMatch *v;
    Py_ssize_t n, cap;
} AutomatonMatches;

typedef struct {
    PyTypeObject *type;
    /* Appends every match in text[start:end] (as Automaton.scan orders them) to `out`; 0, or -1 with an
       exception set. `automaton` must be of `type`. */
    int (*matches)(PyObject *automaton, const unsigned char *text, Py_ssize_t start, Py_ssize_t end,
                   AutomatonMatches *out);
    Py_ssize_t (*nkeys)(PyObject *automaton);
} AutomatonAPI;

#endif
