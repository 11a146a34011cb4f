/* pipeline.parsing._accel: the whole-text passes of the parsing stage in C (optional; pipeline/parsing/text.py
 * and normalize.py run the same steps in Python, XSLT and bytes methods when this module is not built, with the
 * same results: tests/test_text.py and tests/test_normalize.py compare them).
 *
 * Walker(block, skip).text(root): the text of an lxml tree as text._TEXT_XSLT computes it, as UTF-8 bytes: the
 *   text nodes in document order, nothing from a `skip` element, "\n\n" before and after the content of a
 *   `block` element (names compared exactly, as XSLT matches them). It reads libxml2's nodes directly, where
 *   the XSLT run costs a transform context, a result tree and its serialization per call. None when the tree
 *   is deeper than MAX_DEPTH (text.py then takes the XSLT route).
 * paragraphs(text): text._paragraphs_utf8 in one pass over the UTF-8 of a str or bytes: controls, zero-width
 *   space and BOM dropped, a whitespace run (space, tab, CR, LF, no-break space) holding two line breaks
 *   becomes a paragraph break "\n\n", any other run a space, none at either end. Returns (text, the distinct
 *   non-ASCII characters of the input), the input str itself when nothing changed; the caller checks those
 *   characters (text._nfc_inert) before it trusts the result.
 * hash_form(text): text.casefold().encode("utf-8").replace(b"\n\n", b" ") where text's non-ASCII characters
 *   fold to themselves: (bytes, the distinct non-ASCII characters) for the caller to check.
 * maybe_unsafe(raw), has_nul_or_surrogate(text): screens (memchr, one loop) for text.py's rare paths.
 * paragraphs and hash_form return None for input they do not take (lone surrogates, invalid UTF-8, more than
 * MAX_ASTRAL distinct characters beyond the BMP); the caller takes the general path then.
 *
 * lxml's public C API (struct LxmlElement in lxml/etree.h) and libxml2's public xmlNode (libxml/tree.h) are
 * stable ABI; their leading fields are declared here, so the build needs no headers but Python's. The module
 * refuses to load when lxml's _Element does not have the declared size.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <stdint.h>
#include <string.h>
#include "_sha256.h"

/* libxml2's xmlNode, up to the field read here (libxml/tree.h) */
typedef struct XNode {
    void *private_;
    int type; /* xmlElementType */
    const unsigned char *name;
    struct XNode *children;
    struct XNode *last;
    struct XNode *parent;
    struct XNode *next;
    struct XNode *prev;
    void *doc;
    struct XNs *ns;
    unsigned char *content;
    struct XAttr *properties;
} XNode;

/* libxml2's xmlNs and xmlAttr, up to the fields read here */
typedef struct XNs {
    struct XNs *next;
    int type;
    const unsigned char *href;
} XNs;

typedef struct XAttr {
    void *private_;
    int type;
    const unsigned char *name;
    XNode *children;
    XNode *last;
    XNode *parent;
    struct XAttr *next;
    struct XAttr *prev;
    void *doc;
    XNs *ns;
} XAttr;

enum { ELEMENT_NODE = 1, TEXT_NODE = 3, CDATA_SECTION_NODE = 4 };

/* lxml.etree._Element (struct LxmlElement in lxml/etree.h) */
typedef struct {
    PyObject_HEAD
    void *doc;
    XNode *c_node;
    PyObject *tag;
} LxmlElement;

static PyTypeObject *element_type; /* lxml.etree._Element */

#define MAX_DEPTH 4096
#define MAX_ASTRAL 64

/* ---- a growable byte buffer ---- */

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} Buffer;

static int
reserve(Buffer *buf, size_t extra)
{
    if (buf->len + extra <= buf->cap) {
        return 0;
    }
    size_t cap = buf->cap ? buf->cap : 4096;
    while (cap < buf->len + extra) {
        if (cap > PY_SSIZE_T_MAX / 2) {
            PyErr_NoMemory();
            return -1;
        }
        cap *= 2;
    }
    char *data = PyMem_Realloc(buf->data, cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    buf->data = data;
    buf->cap = cap;
    return 0;
}

static int
append(Buffer *buf, const char *bytes, size_t n)
{
    if (n == 0) { /* (memcpy to a buffer not yet allocated, NULL, is undefined even for no bytes) */
        return 0;
    }
    if (reserve(buf, n) < 0) {
        return -1;
    }
    memcpy(buf->data + buf->len, bytes, n);
    buf->len += n;
    return 0;
}

static void
shrink(Buffer *buf)
{
    if (buf->cap > (1 << 20)) { /* keep a small buffer between calls, not the largest ever */
        PyMem_Free(buf->data);
        buf->data = NULL;
        buf->cap = 0;
    }
    buf->len = 0;
}

/* ---- Walker ---- */

enum { KIND_OTHER = 0, KIND_BLOCK = 1, KIND_SKIP = 2 };

typedef struct {
    char *name; /* NUL-terminated, owned */
    int kind;
} Name;

typedef struct {
    PyObject_HEAD
    Name *names;       /* grouped by first byte: first[c] .. first[c + 1] */
    Py_ssize_t count;
    Py_ssize_t first[257];
    Buffer out;
} Walker;

static int
kind_of(const Walker *self, const unsigned char *name)
{
    if (name == NULL) {
        return KIND_OTHER;
    }
    for (Py_ssize_t k = self->first[name[0]]; k < self->first[name[0] + 1]; k++) {
        if (strcmp(self->names[k].name, (const char *)name) == 0) {
            return self->names[k].kind;
        }
    }
    return KIND_OTHER;
}

static void
Walker_dealloc(Walker *self)
{
    for (Py_ssize_t k = 0; k < self->count; k++) {
        PyMem_Free(self->names[k].name);
    }
    PyMem_Free(self->names);
    PyMem_Free(self->out.data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
add_names(Walker *self, PyObject *iterable, int kind, Py_ssize_t *at, Py_ssize_t capacity)
{
    PyObject *seq = PySequence_Fast(iterable, "names must be a sequence of str");
    if (seq == NULL) {
        return -1;
    }
    for (Py_ssize_t k = 0; k < PySequence_Fast_GET_SIZE(seq); k++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, k);
        Py_ssize_t size;
        const char *utf8 = PyUnicode_Check(item) ? PyUnicode_AsUTF8AndSize(item, &size) : NULL;
        if (utf8 == NULL || size == 0 || (Py_ssize_t)strlen(utf8) != size || *at >= capacity) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_ValueError, "names must be non-empty str without NUL");
            }
            Py_DECREF(seq);
            return -1;
        }
        char *copy = PyMem_Malloc((size_t)size + 1);
        if (copy == NULL) {
            Py_DECREF(seq);
            PyErr_NoMemory();
            return -1;
        }
        memcpy(copy, utf8, (size_t)size + 1);
        self->names[*at].name = copy;
        self->names[*at].kind = kind;
        (*at)++;
        self->count = *at;
    }
    Py_DECREF(seq);
    return 0;
}

static PyObject *
Walker_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"block", "skip", NULL};
    PyObject *block, *skip;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:Walker", keywords, &block, &skip)) {
        return NULL;
    }
    Py_ssize_t capacity = PyObject_Length(block);
    Py_ssize_t skips = PyObject_Length(skip);
    if (capacity < 0 || skips < 0) {
        return NULL;
    }
    capacity += skips;
    Walker *self = (Walker *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->names = PyMem_Calloc((size_t)capacity + 1, sizeof(Name));
    if (self->names == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    Py_ssize_t at = 0;
    /* skip first: a name in both lists is skipped, as the XSLT's later template wins */
    if (add_names(self, skip, KIND_SKIP, &at, capacity) < 0 ||
        add_names(self, block, KIND_BLOCK, &at, capacity) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    /* grouped by first byte, keeping the order within a group */
    Name *sorted = PyMem_Calloc((size_t)at + 1, sizeof(Name));
    if (sorted == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    Py_ssize_t n = 0;
    for (int c = 0; c < 256; c++) {
        self->first[c] = n;
        for (Py_ssize_t k = 0; k < at; k++) {
            if ((unsigned char)self->names[k].name[0] == c) {
                sorted[n++] = self->names[k];
            }
        }
    }
    self->first[256] = n;
    PyMem_Free(self->names);
    self->names = sorted;
    return (PyObject *)self;
}

/* Appends the text of `root` and of its siblings (the XSLT runs over root's whole document, whose other
 * children can only be a DTD, comments or PIs, which give no text). -1: error set; 1: too deep. */
static int
walk(Walker *self, XNode *top)
{
    Buffer *out = &self->out;
    while (top->prev != NULL) {
        top = top->prev;
    }
    for (; top != NULL; top = top->next) {
        XNode *cur = top;
        int depth = 0;
        for (;;) {
            int descend = 0;
            if (cur->type == ELEMENT_NODE) {
                int kind = kind_of(self, cur->name);
                if (kind != KIND_SKIP) {
                    if (kind == KIND_BLOCK && append(out, "\n\n", 2) < 0) {
                        return -1;
                    }
                    if (cur->children != NULL) {
                        descend = 1;
                    }
                    else if (kind == KIND_BLOCK && append(out, "\n\n", 2) < 0) {
                        return -1;
                    }
                }
            }
            else if ((cur->type == TEXT_NODE || cur->type == CDATA_SECTION_NODE) && cur->content != NULL) {
                if (append(out, (const char *)cur->content, strlen((const char *)cur->content)) < 0) {
                    return -1;
                }
            }
            if (descend) {
                if (++depth > MAX_DEPTH) {
                    return 1;
                }
                cur = cur->children;
                continue;
            }
            while (cur != top && cur->next == NULL) {
                cur = cur->parent;
                depth--;
                if (kind_of(self, cur->name) == KIND_BLOCK && append(out, "\n\n", 2) < 0) {
                    return -1;
                }
            }
            if (cur == top) {
                break;
            }
            cur = cur->next;
        }
    }
    return 0;
}

static PyObject *
Walker_text(Walker *self, PyObject *root)
{
    if (!PyObject_TypeCheck(root, element_type)) {
        PyErr_SetString(PyExc_TypeError, "text() needs an lxml element");
        return NULL;
    }
    XNode *node = ((LxmlElement *)root)->c_node;
    if (node == NULL) {
        PyErr_SetString(PyExc_ValueError, "element without a node");
        return NULL;
    }
    self->out.len = 0;
    int status = walk(self, node);
    PyObject *result = NULL;
    if (status == 0) {
        result = PyBytes_FromStringAndSize(self->out.data ? self->out.data : "", (Py_ssize_t)self->out.len);
    }
    else if (status == 1) {
        result = Py_NewRef(Py_None);
    }
    shrink(&self->out);
    return result;
}

static PyObject *Walker_paragraphs(Walker *self, PyObject *root);

static PyMethodDef Walker_methods[] = {
    {"text", (PyCFunction)Walker_text, METH_O, "The tree's text as text._TEXT_XSLT gives it (UTF-8); None: too deep."},
    {"paragraphs", (PyCFunction)Walker_paragraphs, METH_O,
     "text(root), and where it holds no '<' or 't:'/'T:' and its paragraphs() hold no 't:'/'T:': "
     "(paragraphs text, distinct non-ASCII characters, text(root)); None: too deep."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject WalkerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pipeline.parsing._accel.Walker",
    .tp_basicsize = sizeof(Walker),
    .tp_dealloc = (destructor)Walker_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Walker(block, skip): text(root) of an lxml tree, block elements as paragraph breaks.",
    .tp_methods = Walker_methods,
    .tp_new = Walker_new,
};

/* ---- ItemReader: an RSS item's children in one pass ---- */

/* What fastfeed._rss_children does with an item child of each tag (fastfeed._ITEM_ROLES). */
enum { ROLE_TEXT = 0, ROLE_AUTHOR = 1, ROLE_GUID = 2, ROLE_CATEGORY = 3, ROLE_IGNORED = 4, ROLE_CHILDLESS = 5 };
#define MAX_ROLES 64

typedef struct {
    char *ns; /* NULL: no namespace; owned */
    char *local; /* owned */
    int role;
    PyObject *tag; /* the tag as lxml spells it ("{ns}local" or "local") */
} Role;

typedef struct {
    PyObject_HEAD
    Role roles[MAX_ROLES];
    Py_ssize_t count;
    PyObject *value; /* fastfeed._value, for text that is not ASCII */
    PyObject *strip; /* "strip" */
    Buffer buf;
} ItemReader;

static void
ItemReader_dealloc(ItemReader *self)
{
    for (Py_ssize_t k = 0; k < self->count; k++) {
        PyMem_Free(self->roles[k].ns);
        PyMem_Free(self->roles[k].local);
        Py_XDECREF(self->roles[k].tag);
    }
    Py_XDECREF(self->value);
    Py_XDECREF(self->strip);
    PyMem_Free(self->buf.data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static char *
copy_string(const char *s, size_t n)
{
    char *copy = PyMem_Malloc(n + 1);
    if (copy == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    memcpy(copy, s, n);
    copy[n] = 0;
    return copy;
}

static PyObject *
ItemReader_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"roles", "value", NULL};
    PyObject *roles, *value;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O:ItemReader", keywords, &PyDict_Type, &roles, &value)) {
        return NULL;
    }
    ItemReader *self = (ItemReader *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->value = Py_NewRef(value);
    self->strip = PyUnicode_InternFromString("strip");
    if (self->strip == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    PyObject *tag, *code;
    Py_ssize_t at = 0;
    while (PyDict_Next(roles, &at, &tag, &code)) {
        Py_ssize_t size;
        const char *name = PyUnicode_Check(tag) ? PyUnicode_AsUTF8AndSize(tag, &size) : NULL;
        long role = PyLong_Check(code) ? PyLong_AsLong(code) : -1;
        if (name == NULL || size == 0 || (Py_ssize_t)strlen(name) != size || role < ROLE_TEXT ||
            role > ROLE_CHILDLESS || self->count >= MAX_ROLES) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_ValueError, "roles: at most 64 tags (str without NUL) -> role 0..5");
            }
            Py_DECREF(self);
            return NULL;
        }
        Role *r = &self->roles[self->count++];
        r->role = (int)role;
        r->tag = Py_NewRef(tag);
        const char *local = name;
        if (name[0] == '{') {
            const char *close = strchr(name, '}');
            if (close == NULL || close[1] == 0) {
                PyErr_SetString(PyExc_ValueError, "roles: a namespaced tag is {ns}local");
                Py_DECREF(self);
                return NULL;
            }
            r->ns = copy_string(name + 1, (size_t)(close - name - 1));
            local = close + 1;
            if (r->ns == NULL) {
                Py_DECREF(self);
                return NULL;
            }
        }
        r->local = copy_string(local, strlen(local));
        if (r->local == NULL) {
            Py_DECREF(self);
            return NULL;
        }
    }
    return (PyObject *)self;
}

static const Role *
role_of(const ItemReader *self, const XNode *node)
{
    const unsigned char *href = node->ns != NULL ? node->ns->href : NULL;
    for (Py_ssize_t k = 0; k < self->count; k++) { /* (the first byte tells most roles apart without strcmp) */
        const Role *r = &self->roles[k];
        if (r->local[0] == node->name[0] && strcmp(r->local, (const char *)node->name) == 0 &&
            (r->ns == NULL ? href == NULL : href != NULL && strcmp(r->ns, (const char *)href) == 0)) {
            return r;
        }
    }
    return NULL;
}

/* Whether the node's children are all text or CDATA (lxml's len(el) == 0: no element, comment, PI or entity). */
static int
only_text(const XNode *node)
{
    for (const XNode *c = node->children; c != NULL; c = c->next) {
        if (c->type != TEXT_NODE && c->type != CDATA_SECTION_NODE) {
            return 0;
        }
    }
    return 1;
}

/* Whether the element has exactly one attribute, without a namespace, of this name. */
static const XAttr *
only_attribute(const XNode *node, const char *name)
{
    const XAttr *a = node->properties;
    return a != NULL && a->next == NULL && a->ns == NULL && strcmp((const char *)a->name, name) == 0 ? a : NULL;
}

/* Whether n bytes are all ASCII (eight at a time). */
static int
all_ascii(const unsigned char *p, size_t n)
{
    size_t i = 0;
    uint64_t high = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        high |= w;
    }
    for (; i < n; i++) {
        high |= p[i];
    }
    return !(high & 0x8080808080808080ULL);
}

/* fastfeed's value of an element of text children (lxml's .text: their contents joined): ASCII text stripped
 * as str.strip() strips it, other text through fastfeed._value. New reference; NULL with an error set (a
 * UnicodeDecodeError: what lxml's .text raises). */
static PyObject *
item_value(ItemReader *self, const XNode *node)
{
    const XNode *c = node->children;
    const unsigned char *p = (const unsigned char *)"";
    size_t n = 0;
    if (c != NULL && c->next == NULL) {
        if (c->content != NULL) {
            p = c->content;
            n = strlen((const char *)p);
        }
    }
    else if (c != NULL) {
        self->buf.len = 0;
        for (; c != NULL; c = c->next) {
            if (c->content != NULL && append(&self->buf, (const char *)c->content, strlen((const char *)c->content)) < 0) {
                return NULL;
            }
        }
        if (self->buf.len) {
            p = (const unsigned char *)self->buf.data;
            n = self->buf.len;
        }
    }
    if (!all_ascii(p, n)) {
        PyObject *text = PyUnicode_DecodeUTF8((const char *)p, (Py_ssize_t)n, NULL);
        if (text == NULL) {
            return NULL;
        }
        PyObject *value = PyObject_CallOneArg(self->value, text);
        Py_DECREF(text);
        if (value != NULL && !PyUnicode_Check(value)) {
            Py_DECREF(value);
            PyErr_SetString(PyExc_TypeError, "value() must return a str");
            return NULL;
        }
        return value;
    }
    size_t start = 0;
    while (start < n && Py_UNICODE_ISSPACE(p[start])) {
        start++;
    }
    while (n > start && Py_UNICODE_ISSPACE(p[n - 1])) {
        n--;
    }
    PyObject *value = PyUnicode_New((Py_ssize_t)(n - start), 127);
    if (value != NULL) {
        memcpy(PyUnicode_1BYTE_DATA(value), p + start, n - start);
    }
    return value;
}

/* One child of the item into text / names / categories. 0: done; 1: not the common case (the caller returns
 * None); -1: error set. */
static int
read_child(ItemReader *self, const XNode *el, PyObject *text, PyObject *names, PyObject *categories, int *guid_is_link)
{
    const Role *r = role_of(self, el);
    if (r == NULL) {
        return 1;
    }
    for (const XAttr *a = el->properties; a != NULL; a = a->next) {
        if (a->ns != NULL) { /* xml:base, xml:lang, or any other namespaced attribute: Python decides */
            return 1;
        }
    }
    switch (r->role) {
    case ROLE_IGNORED:
        return 0;
    case ROLE_CHILDLESS:
        return only_text(el) ? 0 : 1;
    case ROLE_CATEGORY:
        if ((el->properties != NULL && only_attribute(el, "domain") == NULL) || !only_text(el)) {
            return 1;
        }
        break;
    case ROLE_GUID:
        if (el->properties != NULL) {
            const XAttr *a = only_attribute(el, "isPermaLink");
            if (a == NULL) {
                return 1;
            }
            const XNode *v = a->children;
            if (v != NULL && (v->next != NULL || v->type != TEXT_NODE || v->content == NULL)) {
                return 1;
            }
            *guid_is_link = v != NULL && strcmp((const char *)v->content, "true") == 0;
        }
        else {
            *guid_is_link = 1;
        }
        if (!only_text(el)) {
            return 1;
        }
        break;
    default: /* text, author */
        if (el->properties != NULL || !only_text(el)) {
            return 1;
        }
    }
    if (r->role != ROLE_CATEGORY) {
        int repeated = PyDict_Contains(text, r->tag);
        if (repeated != 0) {
            return repeated;
        }
    }
    PyObject *value = item_value(self, el);
    if (value == NULL) {
        if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            PyErr_Clear();
            return 1;
        }
        return -1;
    }
    int status = 0;
    if (r->role == ROLE_CATEGORY) {
        if (PyUnicode_GET_LENGTH(value)) {
            status = PyList_Append(categories, value);
        }
        Py_DECREF(value);
        return status;
    }
    if (r->role == ROLE_AUTHOR) {
        Py_ssize_t at = PyUnicode_FindChar(value, '@', 0, PyUnicode_GET_LENGTH(value), 1);
        if (at != -1) { /* -2: error set */
            Py_DECREF(value);
            return at == -2 ? -1 : 1;
        }
        PyObject *name = PyObject_CallMethodNoArgs(value, self->strip);
        if (name == NULL) {
            Py_DECREF(value);
            return -1;
        }
        if (PyUnicode_GET_LENGTH(name)) {
            status = PyList_Append(names, name);
        }
        Py_DECREF(name);
    }
    if (status == 0) {
        status = PyDict_SetItem(text, r->tag, value);
    }
    Py_DECREF(value);
    return status;
}

/* read(item): (text, names, categories, guid_is_link) as fastfeed._rss_children gives them, or None when
 * the item is not the common case (any attribute on the item, a child that is no element, an unknown or
 * repeated element, markup or an unexpected attribute where a text is read, a namespaced attribute, an
 * author with an e-mail address): fastfeed then reads it in Python (and usually doubts it). */
static PyObject *
ItemReader_read(ItemReader *self, PyObject *item)
{
    if (!PyObject_TypeCheck(item, element_type) || ((LxmlElement *)item)->c_node == NULL) {
        PyErr_SetString(PyExc_TypeError, "read() needs an lxml element");
        return NULL;
    }
    const XNode *node = ((LxmlElement *)item)->c_node;
    if (node->properties != NULL) {
        Py_RETURN_NONE;
    }
    PyObject *text = PyDict_New();
    PyObject *names = PyList_New(0);
    PyObject *categories = PyList_New(0);
    int guid_is_link = 0;
    int status = text == NULL || names == NULL || categories == NULL ? -1 : 0;
    for (const XNode *el = node->children; el != NULL && status == 0; el = el->next) {
        if (el->type == ELEMENT_NODE) {
            status = read_child(self, el, text, names, categories, &guid_is_link);
        }
        else if (el->type != TEXT_NODE && el->type != CDATA_SECTION_NODE) {
            status = 1;
        }
    }
    shrink(&self->buf);
    PyObject *result = NULL;
    if (status == 0) {
        result = PyTuple_Pack(4, text, names, categories, guid_is_link ? Py_True : Py_False);
    }
    else if (status == 1) {
        result = Py_NewRef(Py_None);
    }
    Py_XDECREF(text);
    Py_XDECREF(names);
    Py_XDECREF(categories);
    return result;
}

static PyMethodDef ItemReader_methods[] = {
    {"read", (PyCFunction)ItemReader_read, METH_O,
     "(text, names, categories, guid_is_link) of an RSS item as fastfeed._rss_children gives them, or None."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ItemReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pipeline.parsing._accel.ItemReader",
    .tp_basicsize = sizeof(ItemReader),
    .tp_dealloc = (destructor)ItemReader_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "ItemReader(roles, value): read(item), an RSS item's children in one pass.",
    .tp_methods = ItemReader_methods,
    .tp_new = ItemReader_new,
};

/* ---- nothing_to_cut: prescreen._nothing_to_cut's walk by hand ---- */

static const char *const AUTHOR_NAMES[] = {"author", "creator", "managingeditor", "webmaster", "publisher", "owner"};
#define AUTHOR_MAX_BYTES 256
#define AUTHOR_MAX_RUN 64

static inline int
is_regex_space(unsigned char c) /* \s of a bytes pattern */
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static inline int
is_word(unsigned char c) /* \w of a bytes pattern */
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static inline int
is_run_char(unsigned char c) /* prescreen._LONG_RUN's class */
{
    return is_word(c) || c == '.' || c == '+' || c == '-';
}

/* Whether the n bytes at p equal the ASCII lower-case word w, ignoring ASCII case. */
static int
equal_ignoring_case(const unsigned char *p, size_t n, const char *w)
{
    for (size_t k = 0; k < n; k++) {
        unsigned char c = p[k];
        if ((unsigned char)(c >= 'A' && c <= 'Z' ? c + 32 : c) != (unsigned char)w[k]) {
            return 0;
        }
    }
    return 1;
}

/* An author name of AUTHOR_NAMES at j, followed by \s, '/' or '>': its end, else 0. */
static size_t
author_name_at(const unsigned char *s, size_t n, size_t j)
{
    for (size_t k = 0; k < sizeof(AUTHOR_NAMES) / sizeof(AUTHOR_NAMES[0]); k++) {
        size_t len = strlen(AUTHOR_NAMES[k]);
        if (j + len < n && equal_ignoring_case(s + j, len, AUTHOR_NAMES[k])) {
            unsigned char c = s[j + len];
            return is_regex_space(c) || c == '/' || c == '>' ? j + len : 0;
        }
    }
    return 0;
}

/* The rest of an author start tag from e ("[^<>]*>"): the end after its '>', else 0. */
static size_t
tag_end_from(const unsigned char *s, size_t n, size_t e)
{
    while (e < n && s[e] != '<' && s[e] != '>') {
        e++;
    }
    return e < n && s[e] == '>' ? e + 1 : 0;
}

/* prescreen._AUTHOR_START matched at i (s[i] == '<'): 1 CDATA, 2 comment, 3 an author start tag (its name
 * s[*name, *name_end), its end *end), 0 no match. */
static int
author_start_at(const unsigned char *s, size_t n, size_t i, size_t *name, size_t *name_end, size_t *end)
{
    if (i + 9 <= n && s[i + 1] == '!' && s[i + 2] == '[' && equal_ignoring_case(s + i + 3, 5, "cdata") && s[i + 8] == '[') {
        *end = i + 9;
        return 1;
    }
    if (i + 4 <= n && s[i + 1] == '!' && s[i + 2] == '-' && s[i + 3] == '-') {
        *end = i + 4;
        return 2;
    }
    size_t j = i + 1;
    if (j < n && ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z') || s[j] == '_')) {
        size_t k = j + 1; /* the prefix "[A-Za-z_][\w.-]*+:" (possessive) */
        while (k < n && (is_word(s[k]) || s[k] == '.' || s[k] == '-')) {
            k++;
        }
        if (k < n && s[k] == ':') {
            size_t e = author_name_at(s, n, k + 1);
            size_t t = e ? tag_end_from(s, n, e) : 0;
            if (t) {
                *name = j;
                *name_end = e;
                *end = t;
                return 3;
            }
        }
    }
    size_t e = author_name_at(s, n, j);
    size_t t = e ? tag_end_from(s, n, e) : 0;
    if (t) {
        *name = j;
        *name_end = e;
        *end = t;
        return 3;
    }
    return 0;
}

/* prescreen._SHORT_CONTENT matched at pos: its end, the span of its text (or CDATA text) and of the end
 * tag's name; 0 no match. */
static size_t
short_content_at(const unsigned char *s, size_t n, size_t pos, size_t *t0, size_t *t1, size_t *m0, size_t *m1)
{
    for (int cdata = 1; cdata >= 0; cdata--) {
        size_t start = pos, q;
        if (cdata) {
            if (!(pos + 9 <= n && memcmp(s + pos, "<![CDATA[", 9) == 0)) {
                continue;
            }
            start = pos + 9;
            q = start;
            while (q < n && q - start <= AUTHOR_MAX_BYTES && s[q] != '<' && s[q] != ']') {
                q++;
            }
            if (q - start > AUTHOR_MAX_BYTES || !(q + 3 <= n && memcmp(s + q, "]]>", 3) == 0)) {
                continue;
            }
            *t0 = start;
            *t1 = q;
            q += 3;
        }
        else {
            q = start;
            while (q < n && q - start <= AUTHOR_MAX_BYTES && s[q] != '<') {
                q++;
            }
            if (q - start > AUTHOR_MAX_BYTES) {
                continue;
            }
            *t0 = start;
            *t1 = q;
        }
        /* "</\s*(name)\s*>" */
        if (!(q + 2 <= n && s[q] == '<' && s[q + 1] == '/')) {
            continue;
        }
        q += 2;
        while (q < n && is_regex_space(s[q])) {
            q++;
        }
        size_t name = q;
        while (q < n && s[q] != '<' && s[q] != '>' && !is_regex_space(s[q])) {
            q++;
        }
        if (q == name) {
            continue;
        }
        *m0 = name;
        *m1 = q;
        while (q < n && is_regex_space(s[q])) {
            q++;
        }
        if (q < n && s[q] == '>') {
            return q + 1;
        }
    }
    return 0;
}

static int
has_long_run(const unsigned char *s, size_t from, size_t to)
{
    size_t run = 0;
    for (size_t k = from; k < to; k++) {
        run = is_run_char(s[k]) ? run + 1 : 0;
        if (run > AUTHOR_MAX_RUN) {
            return 1;
        }
    }
    return 0;
}

static const unsigned char *
find_bytes(const unsigned char *s, size_t n, size_t from, const char *what, size_t len)
{
    for (size_t k = from; k + len <= n; k++) {
        const unsigned char *first = memchr(s + k, what[0], n - k - len + 1);
        if (first == NULL) {
            return NULL;
        }
        k = (size_t)(first - s);
        if (memcmp(first, what, len) == 0) {
            return first;
        }
    }
    return NULL;
}

/* nothing_to_cut(data): prescreen._nothing_to_cut, the same answer (tests/test_prescreen.py compares them). */
static PyObject *
nothing_to_cut(PyObject *module, PyObject *data)
{
    (void)module;
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "nothing_to_cut() needs bytes");
        return NULL;
    }
    const unsigned char *s = (const unsigned char *)PyBytes_AS_STRING(data);
    size_t n = (size_t)PyBytes_GET_SIZE(data);
    size_t pos = 0;
    while (pos < n) {
        const unsigned char *lt = memchr(s + pos, '<', n - pos);
        if (lt == NULL) {
            break;
        }
        size_t i = (size_t)(lt - s), name, name_end, end;
        int kind = author_start_at(s, n, i, &name, &name_end, &end);
        if (kind == 0) {
            pos = i + 1;
            continue;
        }
        if (kind != 3) { /* CDATA or comment: stepped over */
            const unsigned char *close = kind == 1 ? find_bytes(s, n, end, "]]>", 3) : find_bytes(s, n, end, "-->", 3);
            if (close == NULL) {
                Py_RETURN_TRUE;
            }
            pos = (size_t)(close - s) + 3;
            continue;
        }
        pos = end;
        if (s[end - 2] == '/') {
            continue;
        }
        size_t t0, t1, m0, m1;
        size_t after = short_content_at(s, n, pos, &t0, &t1, &m0, &m1);
        if (after == 0 || m1 - m0 != name_end - name) {
            Py_RETURN_FALSE;
        }
        for (size_t k = 0; k < m1 - m0; k++) {
            unsigned char a = s[m0 + k], b = s[name + k];
            if ((a >= 'A' && a <= 'Z' ? a + 32 : a) != (b >= 'A' && b <= 'Z' ? b + 32 : b)) {
                Py_RETURN_FALSE;
            }
        }
        if (has_long_run(s, t0, t1)) {
            Py_RETURN_FALSE;
        }
        pos = after;
    }
    Py_RETURN_TRUE;
}

/* ---- distinct non-ASCII characters (paragraphs and hash_form report them for the caller to check) ---- */

static uint8_t seen_bmp[0x10000 / 8];
static uint32_t distinct[0x10000 + MAX_ASTRAL];
static Py_ssize_t n_distinct, n_astral;

/* Records cp; 0, or 1 when there are too many distinct characters beyond the BMP. */
static inline int
note_char(uint32_t cp)
{
    if (cp < 0x10000) {
        if (!(seen_bmp[cp >> 3] & (1u << (cp & 7)))) {
            seen_bmp[cp >> 3] |= (uint8_t)(1u << (cp & 7));
            distinct[n_distinct++] = cp;
        }
        return 0;
    }
    for (Py_ssize_t k = 0; k < n_distinct; k++) {
        if (distinct[k] == cp) {
            return 0;
        }
    }
    if (++n_astral > MAX_ASTRAL) {
        return 1;
    }
    distinct[n_distinct++] = cp;
    return 0;
}

/* The str of `len` bytes of valid UTF-8 (NULL: error set). A non-ASCII str also keeps those bytes as its
   cached UTF-8, which CPython otherwise builds by encoding the str again the first time it is asked (by
   pyarrow's and to_table's string columns: about 7 us a 2.5 KB story of mostly 2-byte text): a strict
   decode's input is exactly the str's UTF-8. Where the cache's layout is not the one known here (another
   CPython, a free-threaded build), the str is returned without it, which only costs that encoding. */
static PyObject *
str_of_utf8(const char *data, Py_ssize_t len)
{
    PyObject *text = PyUnicode_DecodeUTF8(data ? data : "", len, "strict");
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000 && !defined(Py_GIL_DISABLED) && !defined(Py_LIMITED_API)
    if (text != NULL && !PyUnicode_IS_ASCII(text) && PyUnicode_IS_COMPACT(text) &&
        ((PyCompactUnicodeObject *)text)->utf8 == NULL) {
        char *copy = PyObject_Malloc((size_t)len + 1); /* freed by the str's dealloc, as its own cache is */
        if (copy != NULL) {
            memcpy(copy, data, (size_t)len);
            copy[len] = '\0';
            ((PyCompactUnicodeObject *)text)->utf8 = copy;
            ((PyCompactUnicodeObject *)text)->utf8_length = len;
        }
    }
#endif
    return text;
}

/* The recorded characters as a str (NULL: error set); the record is cleared for the next call. */
static PyObject *
take_chars(int build)
{
    PyObject *chars = build ? PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, distinct, n_distinct) : NULL;
    for (Py_ssize_t k = 0; k < n_distinct; k++) {
        if (distinct[k] < 0x10000) {
            seen_bmp[distinct[k] >> 3] = 0;
        }
    }
    n_distinct = n_astral = 0;
    return chars;
}

static Buffer text_out;

/* ---- paragraphs ---- */

enum { C_TEXT = 0, C_SPACE = 1, C_NEWLINE = 2, C_DROP = 3 };

/* text._WHITESPACE_TABLE and text._CONTROL_BYTES: tab a space, CR a newline, the other controls dropped;
 * PLAIN: printable ASCII other than space (copied as it is). */
static unsigned char ASCII_CLASS[128];
static unsigned char PLAIN[256];
static unsigned char ASCII_LOWER[128]; /* for hash_form */

static void
init_classes(void)
{
    for (int c = 0; c < 0x20; c++) {
        ASCII_CLASS[c] = C_DROP;
    }
    ASCII_CLASS[0x7f] = C_DROP;
    ASCII_CLASS[' '] = ASCII_CLASS['\t'] = C_SPACE;
    ASCII_CLASS['\n'] = ASCII_CLASS['\r'] = C_NEWLINE;
    for (int c = 0x21; c < 0x7f; c++) {
        PLAIN[c] = 1;
    }
    for (int c = 0; c < 0x80; c++) {
        ASCII_LOWER[c] = (unsigned char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
}

/* The UTF-8 of code point cp (at most 0x10ffff, not a surrogate: the callers check) into out: its length. */
static inline size_t
encode_utf8(uint32_t cp, unsigned char out[4])
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xc0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xe0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (unsigned char)(0xf0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Length of the UTF-8 sequence at p (at most `left` bytes) and its code point; 0 when invalid. */
static int
decode_utf8(const unsigned char *p, Py_ssize_t left, uint32_t *cp)
{
    unsigned char c = p[0];
    if (c >= 0xc2 && c <= 0xdf && left >= 2 && (p[1] & 0xc0) == 0x80) {
        *cp = ((uint32_t)(c & 0x1f) << 6) | (p[1] & 0x3f);
        return 2;
    }
    if (c >= 0xe0 && c <= 0xef && left >= 3 && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80) {
        *cp = ((uint32_t)(c & 0x0f) << 12) | ((uint32_t)(p[1] & 0x3f) << 6) | (p[2] & 0x3f);
        return (*cp >= 0x800 && (*cp < 0xd800 || *cp > 0xdfff)) ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4 && left >= 4 && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80 &&
        (p[3] & 0xc0) == 0x80) {
        *cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(p[1] & 0x3f) << 12) | ((uint32_t)(p[2] & 0x3f) << 6) |
              (p[3] & 0x3f);
        return (*cp >= 0x10000 && *cp <= 0x10ffff) ? 4 : 0;
    }
    return 0;
}

/* A pending whitespace run: a paragraph break if it held two line breaks, else a space; none at the start. */
#define FLUSH_RUN()                                  \
    do {                                             \
        if (pending) {                               \
            if (len) {                               \
                if (newlines >= 2) {                 \
                    dst[len++] = '\n';               \
                    dst[len++] = '\n';               \
                }                                    \
                else {                               \
                    dst[len++] = ' ';                \
                }                                    \
            }                                        \
            pending = newlines = 0;                  \
        }                                            \
    } while (0)

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define BYTES(b) (0x0101010101010101ULL * (b))

/* The high bit of each byte of w that equals b (exact: no borrow between bytes). */
static inline uint64_t
bytes_equal(uint64_t w, unsigned char b)
{
    uint64_t t = w ^ BYTES(b);
    return ~(((t & BYTES(0x7f)) + BYTES(0x7f)) | t | BYTES(0x7f));
}

/* Whether the 8 bytes at p, after a printable character, are what normalize_paragraphs copies as they are:
 * printable ASCII and single spaces, the last one no space (a whitespace run may go on after it). */
static inline int
simple_word(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    /* a byte below 0x20 (a newline, or a control) or from 0x7f up */
    if ((((w - BYTES(0x20)) & ~w) | w | (w + BYTES(0x01))) & BYTES(0x80)) {
        return 0;
    }
    uint64_t spaces = bytes_equal(w, ' ');
    return !((spaces & (spaces << 8)) | (spaces & (1ULL << 63)));
}
#else
static inline int
simple_word(const unsigned char *p)
{
    (void)p;
    return 0; /* byte by byte */
}
#endif

/* Normalizes the n bytes at src (src[n] == 0) into text_out, noting the non-ASCII characters. 0, -1 (error
 * set) or 1 (not taken: invalid UTF-8, too many astral characters). */
static int
normalize_paragraphs(const unsigned char *src, Py_ssize_t n)
{
    if (reserve(&text_out, (size_t)n + 1) < 0) { /* the output is never longer than the input */
        return -1;
    }
    char *dst = text_out.data;
    size_t len = 0;
    int pending = 0;  /* a whitespace run waits */
    int newlines = 0; /* in it, up to 2 */
    Py_ssize_t i = 0;
    for (;;) {
        unsigned char c = src[i];
        if (PLAIN[c]) { /* a word, and the words after it with one space between (the common case) */
            FLUSH_RUN();
            for (;;) { /* what is copied here follows a printable character (a space: one before it) */
                while (i + 8 <= n && simple_word(src + i)) {
                    memcpy(dst + len, src + i, 8);
                    len += 8;
                    i += 8;
                }
                c = src[i];
                if (PLAIN[c] || (c == ' ' && PLAIN[src[i + 1]])) { /* src[n] is 0: no read past the end */
                    dst[len++] = (char)c;
                    i++;
                    continue;
                }
                break;
            }
        }
        if (i >= n) {
            break;
        }
        if (c < 0x80) {
            switch (ASCII_CLASS[c]) {
            case C_NEWLINE:
                newlines += newlines < 2;
                pending = 1;
                break;
            case C_SPACE:
                pending = 1;
                break;
            case C_DROP:
                break;
            default: /* not reached: PLAIN took it */
                FLUSH_RUN();
                dst[len++] = (char)c;
            }
            i++;
            continue;
        }
        uint32_t cp;
        int size = decode_utf8(src + i, n - i, &cp);
        if (size == 0 || note_char(cp)) {
            return 1;
        }
        if (cp == 0xa0) { /* no-break space: a space */
            pending = 1;
        }
        else if (cp != 0x200b && cp != 0xfeff) { /* zero-width space and BOM are dropped */
            FLUSH_RUN();
            memcpy(dst + len, src + i, (size_t)size);
            len += (size_t)size;
        }
        i += size;
    }
    text_out.len = len;
    return 0;
}

/* Whether n bytes are ASCII text normalize_paragraphs leaves as it is (text._already_clean's rule): printable
 * characters and spaces, no two spaces in a row, paragraphs separated by exactly "\n\n", nothing but a
 * printable character at either end. Eight bytes at a time (most bodies are such text: no copy then). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
static int
ascii_clean(const unsigned char *s, size_t n)
{
    if (n == 0) {
        return 1;
    }
    if (!PLAIN[s[0]] || !PLAIN[s[n - 1]]) {
        return 0;
    }
    uint64_t prev_space = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        /* a byte below 0x20 (a newline, or a control) or from 0x7f up: look at each */
        if ((((w - BYTES(0x20)) & ~w) | w | (w + BYTES(0x01))) & BYTES(0x80)) {
            for (size_t k = i; k < i + 8; k++) {
                if (!PLAIN[s[k]] && s[k] != ' ' && s[k] != '\n') {
                    return 0;
                }
            }
        }
        uint64_t spaces = bytes_equal(w, ' ');
        if ((spaces & (spaces << 8)) || (prev_space & spaces)) {
            return 0;
        }
        prev_space = spaces >> 56; /* the last byte's bit, moved to the first byte's */
    }
    for (; i < n; i++) {
        if (!PLAIN[s[i]] && s[i] != '\n' && !(s[i] == ' ' && s[i - 1] != ' ')) {
            return 0;
        }
    }
    /* every newline starts exactly "\n\n" between two printable characters (the ends are printable) */
    for (const unsigned char *nl = s; (nl = memchr(nl, '\n', n - (size_t)(nl - s))) != NULL; nl += 2) {
        if (nl[1] != '\n' || !PLAIN[nl[-1]] || !PLAIN[nl[2]]) {
            return 0;
        }
    }
    return 1;
}
#else
static int
ascii_clean(const unsigned char *s, size_t n)
{
    (void)s;
    (void)n;
    return 0; /* normalize_paragraphs decides */
}
#endif

/* The UTF-8 of str or bytes, NUL-terminated; *owner: a new reference to release (or NULL). NULL with no
 * error set: lone surrogates. */
static const unsigned char *
utf8_of(PyObject *text, Py_ssize_t *n, PyObject **owner)
{
    *owner = NULL;
    if (PyUnicode_Check(text)) {
        if (PyUnicode_IS_ASCII(text)) {
            *n = PyUnicode_GET_LENGTH(text);
            return PyUnicode_1BYTE_DATA(text);
        }
        PyObject *encoded = PyUnicode_AsUTF8String(text);
        if (encoded == NULL) {
            if (PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
                PyErr_Clear();
            }
            return NULL;
        }
        *owner = encoded;
        *n = PyBytes_GET_SIZE(encoded);
        return (const unsigned char *)PyBytes_AS_STRING(encoded);
    }
    if (PyBytes_Check(text)) {
        *n = PyBytes_GET_SIZE(text);
        return (const unsigned char *)PyBytes_AS_STRING(text);
    }
    PyErr_SetString(PyExc_TypeError, "expected str or bytes");
    return NULL;
}

/* Whether n bytes of (UTF-8 or ASCII) text hold a script-URL start "t:"/"T:" (what text._maybe_script_url
 * screens for): memchr finds the few colons. */
static int
has_script_colon(const char *p, size_t n)
{
    for (const char *colon = p; (colon = memchr(colon, ':', n - (size_t)(colon - p))) != NULL; colon++) {
        if (colon > p && (colon[-1] == 't' || colon[-1] == 'T')) {
            return 1;
        }
    }
    return 0;
}

/* Whether n bytes hold '<' or a script-URL start (text.strip_unsafe or the final screen may act on them). */
static int
maybe_unsafe_bytes(const char *p, size_t n)
{
    return memchr(p, '<', n) != NULL || has_script_colon(p, n);
}

/* paragraphs(text), and with `plain` set: None also when the text holds '<' or "t:"/"T:", or its paragraphs
 * hold "t:"/"T:" (then text.strip_unsafe or text._settled would act on it; the Python steps decide). */
static PyObject *
paragraphs_of(PyObject *text, int plain)
{
    PyObject *owner;
    Py_ssize_t n;
    const unsigned char *src = utf8_of(text, &n, &owner);
    if (src == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    int status = 1;
    if (src[n] == 0 && !(plain && maybe_unsafe_bytes((const char *)src, (size_t)n))) {
        if (owner == NULL && ascii_clean(src, (size_t)n)) { /* ASCII (a str's own data, or bytes), as it is */
            PyObject *clean = PyUnicode_Check(text) ? Py_NewRef(text) : PyUnicode_DecodeASCII((const char *)src, n, "strict");
            if (clean == NULL) {
                return NULL;
            }
            PyObject *none = PyUnicode_New(0, 0);
            PyObject *result = none == NULL ? NULL : PyTuple_Pack(2, clean, none);
            Py_XDECREF(none);
            Py_DECREF(clean);
            return result;
        }
        status = normalize_paragraphs(src, n);
        if (status == 0 && plain && has_script_colon(text_out.data, text_out.len)) {
            status = 1;
        }
    }
    PyObject *result = NULL;
    if (status == 0) {
        const char *data = text_out.data;
        Py_ssize_t len = (Py_ssize_t)text_out.len;
        PyObject *clean;
        if (PyUnicode_Check(text) && len == n && (n == 0 || memcmp(data, src, (size_t)n) == 0)) {
            clean = Py_NewRef(text);
        }
        else {
            clean = str_of_utf8(data, len);
        }
        PyObject *chars = take_chars(clean != NULL);
        if (chars != NULL) {
            result = PyTuple_Pack(2, clean, chars);
            Py_DECREF(chars);
        }
        Py_XDECREF(clean);
    }
    else {
        take_chars(0);
        if (status == 1) {
            result = Py_NewRef(Py_None);
        }
    }
    Py_XDECREF(owner);
    shrink(&text_out);
    return result;
}

/* Walker.paragraphs(root): text(root) as bytes, or where the text holds no '<' and no "t:"/"T:" (so no markup
 * and no script URL: text.strip_unsafe keeps it) and its paragraphs hold no "t:"/"T:" (the paragraph pass only
 * drops and collapses characters, so they hold no '<' either: text._settled keeps them), a tuple (paragraphs,
 * distinct non-ASCII characters, text(root)): what text.html_to_text returns when those characters are
 * text._nfc_inert, checked in one call without the Python screens. */
static PyObject *raw_paragraphs(PyObject *raw);

static PyObject *
Walker_paragraphs(Walker *self, PyObject *root)
{
    PyObject *raw = Walker_text(self, root);
    if (raw == NULL || raw == Py_None) {
        return raw;
    }
    return raw_paragraphs(raw);
}

/* Walker.paragraphs' answer for the text `raw` (bytes; the reference is taken over). */
static PyObject *
raw_paragraphs(PyObject *raw)
{
    const unsigned char *src = (const unsigned char *)PyBytes_AS_STRING(raw);
    Py_ssize_t n = PyBytes_GET_SIZE(raw);
    if (maybe_unsafe_bytes((const char *)src, (size_t)n)) {
        return raw;
    }
    int status = normalize_paragraphs(src, n); /* (bytes are NUL-terminated) */
    if (status == 0 && has_script_colon(text_out.data, text_out.len)) {
        status = 1;
    }
    PyObject *result = NULL;
    if (status == 0) {
        PyObject *clean = str_of_utf8(text_out.data, (Py_ssize_t)text_out.len);
        PyObject *chars = take_chars(clean != NULL);
        if (chars != NULL) {
            result = PyTuple_Pack(3, clean, chars, raw);
            Py_DECREF(chars);
        }
        Py_XDECREF(clean);
        Py_DECREF(raw);
    }
    else {
        take_chars(0);
        if (status == 1) {
            result = raw;
        }
        else {
            Py_DECREF(raw);
        }
    }
    shrink(&text_out);
    return result;
}

static PyObject *
paragraphs(PyObject *module, PyObject *text)
{
    (void)module;
    return paragraphs_of(text, 0);
}

static PyObject *
plain_text(PyObject *module, PyObject *text)
{
    (void)module;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "plain_text() needs a str");
        return NULL;
    }
    return paragraphs_of(text, 1);
}

/* ---- simple_html: the common simple HTML read without libxml2 (text.html_to_text's first pass) ---- */

/* What the element may hold (text._BLOCK decides which give paragraph breaks; tests/test_simple_html.py checks
 * that BLOCK here agrees with it). */
enum {
    EL_INLINE = 1,  /* a, b, ...: text and inline content */
    EL_PHRASING,    /* p, h1-h6: a block of text and inline content */
    EL_FLOW,        /* div, li, ...: text, inline content and blocks */
    EL_LIST,        /* ul, ol: li only (and whitespace) */
    EL_VOID_INLINE, /* img */
    EL_VOID_BREAK,  /* br: a block without content, allowed wherever text is */
    EL_VOID_BLOCK,  /* hr: only where blocks are */
};

typedef struct {
    const char *name;
    int kind;
    int block; /* in text._BLOCK */
} SimpleElement;

static const SimpleElement SIMPLE_ELEMENTS[] = {
    {"a", EL_INLINE, 0}, {"abbr", EL_INLINE, 0}, {"b", EL_INLINE, 0}, {"cite", EL_INLINE, 0},
    {"code", EL_INLINE, 0}, {"em", EL_INLINE, 0}, {"i", EL_INLINE, 0}, {"mark", EL_INLINE, 0},
    {"s", EL_INLINE, 0}, {"small", EL_INLINE, 0}, {"span", EL_INLINE, 0}, {"strong", EL_INLINE, 0},
    {"sub", EL_INLINE, 0}, {"sup", EL_INLINE, 0}, {"u", EL_INLINE, 0},
    {"p", EL_PHRASING, 1}, {"h1", EL_PHRASING, 1}, {"h2", EL_PHRASING, 1}, {"h3", EL_PHRASING, 1},
    {"h4", EL_PHRASING, 1}, {"h5", EL_PHRASING, 1}, {"h6", EL_PHRASING, 1},
    {"blockquote", EL_FLOW, 1}, {"div", EL_FLOW, 1}, {"figcaption", EL_FLOW, 1}, {"figure", EL_FLOW, 1},
    {"li", EL_FLOW, 1},
    {"ol", EL_LIST, 1}, {"ul", EL_LIST, 1},
    {"img", EL_VOID_INLINE, 0}, {"br", EL_VOID_BREAK, 1}, {"hr", EL_VOID_BLOCK, 1},
};
#define N_SIMPLE_ELEMENTS ((int)(sizeof(SIMPLE_ELEMENTS) / sizeof(SIMPLE_ELEMENTS[0])))
#define SIMPLE_MAX_DEPTH 32

/* Named references read here (exactly these spellings, with their ';'); any other -> not simple. */
static const struct {
    const char *name;
    const char *utf8;
} SIMPLE_ENTITIES[] = {
    {"amp", "&"}, {"lt", "<"}, {"gt", ">"}, {"quot", "\""}, {"apos", "'"},
    {"nbsp", "\xc2\xa0"}, {"copy", "\xc2\xa9"}, {"reg", "\xc2\xae"}, {"deg", "\xc2\xb0"},
    {"middot", "\xc2\xb7"}, {"laquo", "\xc2\xab"}, {"raquo", "\xc2\xbb"}, {"pound", "\xc2\xa3"},
    {"euro", "\xe2\x82\xac"}, {"trade", "\xe2\x84\xa2"}, {"ndash", "\xe2\x80\x93"}, {"mdash", "\xe2\x80\x94"},
    {"lsquo", "\xe2\x80\x98"}, {"rsquo", "\xe2\x80\x99"}, {"ldquo", "\xe2\x80\x9c"}, {"rdquo", "\xe2\x80\x9d"},
    {"hellip", "\xe2\x80\xa6"}, {"bull", "\xe2\x80\xa2"}, {"times", "\xc3\x97"},
};
#define N_SIMPLE_ENTITIES ((int)(sizeof(SIMPLE_ENTITIES) / sizeof(SIMPLE_ENTITIES[0])))

static Buffer simple_out;

/* Each byte of text: copied as it is, the end of the run ('<', '&'), the start of a UTF-8 sequence to check,
 * or not simple (controls but tab and newline, CR, DEL, a byte no sequence starts with). */
enum { TEXT_COPY = 0, TEXT_STOP, TEXT_WIDE, TEXT_REFUSE };
static unsigned char SIMPLE_TEXT[256];

static void
init_simple_text(void)
{
    for (int c = 0; c < 256; c++) {
        SIMPLE_TEXT[c] = c >= 0x20 && c < 0x7f ? TEXT_COPY : c >= 0xc2 && c <= 0xf4 ? TEXT_WIDE : TEXT_REFUSE;
    }
    SIMPLE_TEXT['\t'] = SIMPLE_TEXT['\n'] = TEXT_COPY;
    SIMPLE_TEXT['<'] = SIMPLE_TEXT['&'] = TEXT_STOP;
}

/* Whether the 8 bytes at p are all printable ASCII (0x20-0x7e) other than '<' and '&' (each TEXT_COPY). */
static inline int
simple_copy8(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t lt, amp, del, below;
    lt = w ^ (ones * '<');
    amp = w ^ (ones * '&');
    del = w ^ (ones * 0x7f);
    below = (w - ones * 0x20) & ~w; /* high bit where a byte is below 0x20 (exact for bytes below 0x80) */
    uint64_t zero = ((lt - ones) & ~lt) | ((amp - ones) & ~amp) | ((del - ones) & ~del);
    return ((w | zero | below) & high) == 0;
}

static inline int
is_ascii_alpha(unsigned char c)
{
    return (unsigned char)((c | 0x20) - 'a') < 26;
}

static inline int
is_ascii_digit(unsigned char c)
{
    return (unsigned char)(c - '0') < 10;
}

static inline int
is_tag_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n';
}

/* A code point this path passes on as libxml2 would (no control, C1, surrogate, BOM or noncharacter; tab and
 * newline are allowed, CR is not). */
static inline int
simple_char(uint32_t cp)
{
    if (cp < 0x80) {
        return cp == '\t' || cp == '\n' || (cp >= 0x20 && cp < 0x7f);
    }
    return cp >= 0xa0 && !(cp >= 0xd800 && cp < 0xe000) && !(cp >= 0xfdd0 && cp < 0xfdf0) && (cp & 0xfffe) != 0xfffe &&
           cp != 0xfeff && cp <= 0x10ffff;
}

static int
append_code_point(Buffer *buf, uint32_t cp)
{
    unsigned char u[4];
    return append(buf, (const char *)u, encode_utf8(cp, u));
}

/* The reference at s[i] == '&' decoded into out: the index after its ';', or 0 (not one read here), or -1
 * (error set). */
static Py_ssize_t
simple_reference(const unsigned char *s, Py_ssize_t n, Py_ssize_t i, Buffer *out)
{
    Py_ssize_t j = i + 1;
    if (j < n && s[j] == '#') {
        uint32_t cp = 0;
        Py_ssize_t digits = 0;
        j++;
        if (j < n && (s[j] | 0x20) == 'x') {
            for (j++; j < n && digits < 6; j++, digits++) {
                unsigned char c = s[j];
                int v = is_ascii_digit(c) ? c - '0' : (unsigned char)((c | 0x20) - 'a') < 6 ? (c | 0x20) - 'a' + 10 : -1;
                if (v < 0) {
                    break;
                }
                cp = cp * 16 + (uint32_t)v;
            }
        }
        else {
            for (; j < n && digits < 7 && is_ascii_digit(s[j]); j++, digits++) {
                cp = cp * 10 + (uint32_t)(s[j] - '0');
            }
        }
        if (digits == 0 || j >= n || s[j] != ';' || !simple_char(cp)) {
            return 0;
        }
        return append_code_point(out, cp) < 0 ? -1 : j + 1;
    }
    while (j < n && j - i <= 8 && (is_ascii_alpha(s[j]) || is_ascii_digit(s[j]))) {
        j++;
    }
    if (j >= n || s[j] != ';') {
        return 0;
    }
    size_t len = (size_t)(j - i - 1);
    for (int k = 0; k < N_SIMPLE_ENTITIES; k++) {
        const char *name = SIMPLE_ENTITIES[k].name;
        if (name[0] == s[i + 1] && strncmp(name, (const char *)s + i + 1, len) == 0 && name[len] == 0) {
            const char *u = SIMPLE_ENTITIES[k].utf8;
            return append(out, u, strlen(u)) < 0 ? -1 : j + 1;
        }
    }
    return 0;
}

/* The element of this (ASCII, any case) name, or -1. */
static int
simple_element(const unsigned char *name, size_t len)
{
    char lower[12];
    if (len == 0 || len >= sizeof(lower)) {
        return -1;
    }
    for (size_t k = 0; k < len; k++) {
        lower[k] = (char)(name[k] | 0x20);
    }
    for (int k = 0; k < N_SIMPLE_ELEMENTS; k++) {
        const char *e = SIMPLE_ELEMENTS[k].name;
        if (e[0] == lower[0] && strncmp(e, lower, len) == 0 && e[len] == 0) {
            return k;
        }
    }
    return -1;
}

/* After a start tag's name at s[i]: its attributes (any names, quoted or simple unquoted values), up to and
 * past the '>'. The index after it, or 0 (not simple); *closed: it ended with "/>". */
static Py_ssize_t
simple_attributes(const unsigned char *s, Py_ssize_t n, Py_ssize_t i, int *closed)
{
    *closed = 0;
    for (;;) {
        int spaced = 0;
        while (i < n && is_tag_space(s[i])) {
            i++;
            spaced = 1;
        }
        if (i >= n) {
            return 0;
        }
        if (s[i] == '>') {
            return i + 1;
        }
        if (s[i] == '/') {
            if (i + 1 < n && s[i + 1] == '>') {
                *closed = 1;
                return i + 2;
            }
            return 0;
        }
        if (!spaced || !is_ascii_alpha(s[i])) {
            return 0;
        }
        while (i < n && (is_ascii_alpha(s[i]) || is_ascii_digit(s[i]) || s[i] == '-' || s[i] == '_' || s[i] == ':')) {
            i++;
        }
        Py_ssize_t after_name = i;
        while (i < n && is_tag_space(s[i])) {
            i++;
        }
        if (i >= n || s[i] != '=') {
            i = after_name; /* an attribute without a value */
            continue;
        }
        i++;
        while (i < n && is_tag_space(s[i])) {
            i++;
        }
        if (i >= n) {
            return 0;
        }
        unsigned char quote = s[i];
        if (quote == '"' || quote == '\'') {
            i++;
            while (i < n && s[i] != quote) {
                unsigned char c = s[i];
                if (c == '<' || c == 0 || c == '\r') {
                    return 0;
                }
                i++;
            }
            if (i >= n) {
                return 0;
            }
            i++;
            if (i < n && !is_tag_space(s[i]) && s[i] != '>' && s[i] != '/') {
                return 0;
            }
        }
        else {
            Py_ssize_t start = i;
            while (i < n && (is_ascii_alpha(s[i]) || is_ascii_digit(s[i]) || strchr("-_.:;,+%#?~", s[i]) != NULL)) {
                i++;
            }
            if (i == start || (i < n && !is_tag_space(s[i]) && s[i] != '>')) {
                return 0;
            }
        }
    }
}

typedef struct {
    int element;
    int content; /* EL_INLINE (phrasing content), EL_FLOW or EL_LIST */
} Open;

/* The text Walker.text gives of libxml2's tree of `s`, into simple_out, when s is simple HTML: the elements of
 * SIMPLE_ELEMENTS properly nested as their content allows (so that the tree has exactly the source's elements:
 * nothing for the parser to close, move or imply), start tags with plain attributes, end tags as written,
 * references of SIMPLE_ENTITIES or numeric ones with their ';', text without '<' or a stray '&', controls
 * (but tab and newline), CR, C1 controls, BOM or noncharacters. 0, or 1 (not simple), or -1 (error set). */
static int
simple_text(const unsigned char *s, Py_ssize_t n)
{
    Open stack[SIMPLE_MAX_DEPTH];
    int depth = 0;
    uint64_t open_inline = 0; /* the inline elements open (none nests in itself) */
    int started = 0;          /* a node was made: libxml2 drops whitespace (also by reference) before the first */
    Buffer *out = &simple_out;
    Py_ssize_t i = 0;
    while (i < n) {
        int content = depth ? stack[depth - 1].content : EL_FLOW;
        unsigned char c = s[i];
        if (c == '<') {
            if (i + 1 < n && s[i + 1] == '/') {
                Py_ssize_t j = i + 2, start = j;
                while (j < n && (is_ascii_alpha(s[j]) || is_ascii_digit(s[j]))) {
                    j++;
                }
                int k = simple_element(s + start, (size_t)(j - start));
                while (j < n && is_tag_space(s[j])) {
                    j++;
                }
                if (k < 0 || j >= n || s[j] != '>' || depth == 0 || stack[depth - 1].element != k) {
                    return 1;
                }
                depth--;
                open_inline &= ~((uint64_t)1 << k);
                if (SIMPLE_ELEMENTS[k].block && append(out, "\n\n", 2) < 0) {
                    return -1;
                }
                i = j + 1;
                continue;
            }
            Py_ssize_t j = i + 1, start = j;
            if (j >= n || !is_ascii_alpha(s[j])) {
                return 1;
            }
            while (j < n && (is_ascii_alpha(s[j]) || is_ascii_digit(s[j]))) {
                j++;
            }
            int k = simple_element(s + start, (size_t)(j - start));
            if (k < 0) {
                return 1;
            }
            int closed;
            j = simple_attributes(s, n, j, &closed);
            if (j == 0) {
                return 1;
            }
            int kind = SIMPLE_ELEMENTS[k].kind;
            int void_element = kind == EL_VOID_INLINE || kind == EL_VOID_BREAK || kind == EL_VOID_BLOCK;
            int allowed;
            switch (kind) {
            case EL_INLINE:
                allowed = content != EL_LIST && !(open_inline & ((uint64_t)1 << k));
                break;
            case EL_VOID_INLINE:
            case EL_VOID_BREAK:
                allowed = content != EL_LIST;
                break;
            case EL_FLOW:
                allowed = strcmp(SIMPLE_ELEMENTS[k].name, "li") == 0 ? content == EL_LIST : content == EL_FLOW;
                break;
            default: /* phrasing blocks, lists, hr */
                allowed = content == EL_FLOW;
            }
            if (!allowed || (closed && !void_element)) {
                return 1;
            }
            started = 1;
            if (SIMPLE_ELEMENTS[k].block && append(out, "\n\n\n\n", void_element ? 4 : 2) < 0) {
                return -1;
            }
            if (!void_element) {
                if (depth == SIMPLE_MAX_DEPTH) {
                    return 1;
                }
                stack[depth].element = k;
                stack[depth].content = kind == EL_PHRASING ? EL_INLINE : kind;
                depth++;
                if (kind == EL_INLINE) {
                    open_inline |= (uint64_t)1 << k;
                }
            }
            i = j;
            continue;
        }
        if (c == '&') {
            if (content == EL_LIST) {
                return 1;
            }
            size_t before = out->len;
            Py_ssize_t j = simple_reference(s, n, i, out);
            if (j <= 0) {
                return j < 0 ? -1 : 1;
            }
            if (!started) {
                started = !is_tag_space((unsigned char)out->data[before]);
                out->len = started ? out->len : before;
            }
            i = j;
            continue;
        }
        /* a run of text up to the next '<' or '&' */
        Py_ssize_t j = i;
        for (;;) {
            for (;;) { /* TEXT_COPY bytes: eight at a time while they are printable ASCII but '<' and '&' */
                while (j + 8 <= n && simple_copy8(s + j)) {
                    j += 8;
                }
                if (j < n && SIMPLE_TEXT[s[j]] == TEXT_COPY) {
                    j++;
                    continue;
                }
                break;
            }
            if (j >= n || SIMPLE_TEXT[s[j]] == TEXT_STOP) {
                break;
            }
            uint32_t cp;
            int len = SIMPLE_TEXT[s[j]] == TEXT_WIDE ? decode_utf8(s + j, n - j, &cp) : 0;
            if (len == 0 || !simple_char(cp)) {
                return 1;
            }
            j += len;
        }
        if (content == EL_LIST) { /* only whitespace between list items */
            for (Py_ssize_t k = i; k < j; k++) {
                if (!is_tag_space(s[k])) {
                    return 1;
                }
            }
        }
        if (!started) {
            while (i < j && is_tag_space(s[i])) {
                i++;
            }
            started = i < j;
        }
        if (append(out, (const char *)s + i, (size_t)(j - i)) < 0) {
            return -1;
        }
        i = j;
    }
    return depth == 0 ? 0 : 1;
}

/* simple_html(html): what Walker.paragraphs gives of libxml2's tree of html, when html is simple HTML (see
 * simple_text); None otherwise (the caller parses it with lxml). */
static PyObject *
simple_html(PyObject *module, PyObject *html)
{
    (void)module;
    if (!PyUnicode_Check(html)) {
        PyErr_SetString(PyExc_TypeError, "simple_html() needs a str");
        return NULL;
    }
    PyObject *owner;
    Py_ssize_t n;
    const unsigned char *s = utf8_of(html, &n, &owner);
    if (s == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_NONE; /* lone surrogates */
    }
    simple_out.len = 0;
    int status = simple_text(s, n);
    Py_XDECREF(owner);
    PyObject *raw = NULL;
    if (status == 0) {
        raw = PyBytes_FromStringAndSize(simple_out.data ? simple_out.data : "", (Py_ssize_t)simple_out.len);
    }
    shrink(&simple_out);
    if (status == 1) {
        Py_RETURN_NONE;
    }
    return raw == NULL ? NULL : raw_paragraphs(raw);
}

/* The elements simple_html reads, and whether each gives paragraph breaks (for the tests). */
static PyObject *
simple_html_elements(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    PyObject *elements = PyDict_New();
    for (int k = 0; elements != NULL && k < N_SIMPLE_ELEMENTS; k++) {
        if (PyDict_SetItemString(elements, SIMPLE_ELEMENTS[k].name, SIMPLE_ELEMENTS[k].block ? Py_True : Py_False) < 0) {
            Py_CLEAR(elements);
        }
    }
    return elements;
}

/* ---- cdata_as_text: an RSS document's CDATA sections as escaped text (fastfeed._document) ---- */

#define CDATA_MAX (1 << 20)

/* Each byte of CDATA content: copied, written as a reference ('&', '<', and ']' so that no "]]>" forms with the
 * text around it; '>' alone needs none), or not plain (a control character but tab and newline, CR, DEL). */
static unsigned char CDATA_CLASS[256];

static void
init_cdata_class(void)
{
    for (int c = 0; c < 0x20; c++) {
        CDATA_CLASS[c] = 2;
    }
    CDATA_CLASS['\t'] = CDATA_CLASS['\n'] = 0;
    CDATA_CLASS[0x7f] = 2;
    CDATA_CLASS['&'] = CDATA_CLASS['<'] = CDATA_CLASS[']'] = 1;
}

/* Whether one of the 8 bytes at p is not copied as it is (CDATA_CLASS nonzero, or a tab or newline, which the
 * byte loop then copies): a byte below 0x20, '&', '<', ']' or DEL (exact: no borrow between bytes). */
static inline int
cdata_special8(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL, low7 = 0x7f7f7f7f7f7f7f7fULL;
    uint64_t special = 0;
    const unsigned char bytes[] = {'&', '<', ']', 0x7f};
    for (int b = 0; b < 4; b++) {
        uint64_t x = w ^ (bytes[b] * ones);
        special |= ~(((x & low7) + low7) | x) & high; /* high bit of each zero byte of x */
    }
    uint64_t small = ~(((w & low7) + (0x80 - 0x20) * ones) | w) & high; /* high bit of each byte below 0x20 */
    return (special | small) != 0;
}

/* Appends the n bytes of CDATA content at p as character data: 0, 1 (not plain), -1 (error set). */
static int
append_escaped(Buffer *out, const unsigned char *p, size_t n)
{
    if (reserve(out, n + 64) < 0) {
        return -1;
    }
    size_t start = 0, k = 0;
    for (;;) {
        while (k + 8 <= n && !cdata_special8(p + k)) {
            k += 8;
        }
        while (k < n && CDATA_CLASS[p[k]] == 0) {
            k++;
        }
        if (k >= n) {
            break;
        }
        if (CDATA_CLASS[p[k]] == 2) {
            return 1;
        }
        const char *ref = p[k] == '&' ? "&amp;" : p[k] == '<' ? "&lt;" : "&#93;";
        if (append(out, (const char *)p + start, k - start) < 0 || append(out, ref, strlen(ref)) < 0) {
            return -1;
        }
        start = ++k;
    }
    return append(out, (const char *)p + start, n - start);
}

/* find_bytes over [p, end) of the document s. */
static const char *
find_in(const char *s, const char *p, const char *end, const char *what, size_t m)
{
    return (const char *)find_bytes((const unsigned char *)s, (size_t)(end - s), (size_t)(p - s), what, m);
}

/* Where the tag whose name starts at c ends: its '>' (or the '<' or `end` that cuts it short), past quoted
 * attribute values; NULL when a quoted value is not closed. *high: a byte beyond ASCII met outside the quotes. */
static const char *
tag_end(const char *c, const char *end, int *high)
{
    while (c < end && *c != '>' && *c != '<') {
        if (*c == '"' || *c == '\'') {
            c = memchr(c + 1, *c, (size_t)(end - c - 1));
            if (c == NULL) {
                return NULL;
            }
        }
        else {
            *high |= (unsigned char)*c >= 0x80;
        }
        c++;
    }
    return c;
}

/* Whether the character data [text, p) ends in a '&' with no ';' after it: "&amp<![CDATA[;...]]>" is not
 * well-formed, but its content written as text would complete the reference. */
static int
unterminated_reference(const char *text, const char *p)
{
    for (const char *c = p; c > text; c--) {
        if (c[-1] == ';') {
            return 0;
        }
        if (c[-1] == '&') {
            return 1;
        }
    }
    return 0;
}

/* cdata_as_text(data): the document with every CDATA section inside the root element replaced by its content
 * as escaped character data (the same text for an XML parser, which reads character data several times faster
 * than CDATA), or None when there is none or the document is not plain (a DOCTYPE or other "<!" declaration, an
 * unterminated comment, PI, tag or section, a CDATA section outside the root element, over CDATA_MAX bytes,
 * holding a control character or CR, or right after an unterminated reference): the caller parses `data` as it
 * is then. */
static PyObject *
cdata_as_text(PyObject *module, PyObject *data)
{
    (void)module;
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "cdata_as_text() needs bytes");
        return NULL;
    }
    const char *s = PyBytes_AS_STRING(data);
    const char *end = s + PyBytes_GET_SIZE(data);
    const char *copied = s, *p = s;
    Py_ssize_t depth = 0;
    int sections = 0, plain = 1;
    Buffer out = {NULL, 0, 0};
    const char *text = p; /* where the character data before the next '<' starts */
    while (plain && (p = memchr(p, '<', (size_t)(end - p))) != NULL) {
        size_t left = (size_t)(end - p);
        if (left >= 9 && memcmp(p, "<![CDATA[", 9) == 0) {
            const char *close = find_in(s, p + 9, end, "]]>", 3);
            if (close == NULL || depth < 1 || close - (p + 9) > CDATA_MAX || unterminated_reference(text, p)) {
                plain = 0;
                break;
            }
            if (append(&out, copied, (size_t)(p - copied)) < 0) {
                break;
            }
            int status = append_escaped(&out, (const unsigned char *)p + 9, (size_t)(close - p - 9));
            if (status != 0) {
                plain = status < 0 ? plain : 0;
                break;
            }
            sections++;
            p = copied = text = close + 3;
        }
        else if (left >= 4 && memcmp(p, "<!--", 4) == 0) {
            const char *close = find_in(s, p + 4, end, "-->", 3);
            plain = close != NULL;
            p = text = plain ? close + 3 : p;
        }
        else if (left >= 2 && p[1] == '?') {
            const char *close = find_in(s, p + 2, end, "?>", 2);
            plain = close != NULL;
            p = text = plain ? close + 2 : p;
        }
        else if (left >= 2 && p[1] == '!') {
            plain = 0;
        }
        else { /* a start or end tag: to its '>', past quoted attribute values */
            int high = 0;
            const char *c = tag_end(p + 1, end, &high);
            if (c == NULL || c >= end || *c != '>') {
                plain = 0;
                break;
            }
            depth += p[1] == '/' ? -1 : c[-1] == '/' ? 0 : 1;
            p = text = c + 1;
        }
    }
    PyObject *result = NULL;
    if (PyErr_Occurred()) {
        result = NULL;
    }
    else if (!plain || sections == 0) {
        result = Py_NewRef(Py_None);
    }
    else if (append(&out, copied, (size_t)(end - copied)) == 0) {
        result = PyBytes_FromStringAndSize(out.data, (Py_ssize_t)out.len);
    }
    PyMem_Free(out.data);
    return result;
}

/* ---- markup_names_ascii: names libxml2 and expat read alike (fastfeed._document) ---- */

/* markup_names_ascii(data): False when a tag (outside its quoted attribute values) or a PI's target has a byte
 * that is not ASCII, or the document has a "<!" declaration other than a comment or CDATA section; else True.
 * libxml2 reads names by XML 1.0's fifth edition, expat (feedparser's strict parser) by older tables: for a name
 * beyond ASCII one may refuse the document the other reads. Unterminated constructs end the scan (True: the
 * parser refuses them). One pass: every byte is looked at once. */
static PyObject *
markup_names_ascii(PyObject *module, PyObject *data)
{
    (void)module;
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "markup_names_ascii() needs bytes");
        return NULL;
    }
    const char *s = PyBytes_AS_STRING(data);
    const char *end = s + PyBytes_GET_SIZE(data);
    const char *p = s;
    while ((p = memchr(p, '<', (size_t)(end - p))) != NULL) {
        size_t left = (size_t)(end - p);
        const char *close;
        if (left >= 4 && memcmp(p, "<!--", 4) == 0) {
            close = find_in(s, p + 4, end, "-->", 3);
            if (close == NULL) {
                Py_RETURN_TRUE;
            }
            p = close + 3;
        }
        else if (left >= 9 && memcmp(p, "<![CDATA[", 9) == 0) {
            close = find_in(s, p + 9, end, "]]>", 3);
            if (close == NULL) {
                Py_RETURN_TRUE;
            }
            p = close + 3;
        }
        else if (left >= 2 && p[1] == '!') {
            Py_RETURN_FALSE;
        }
        else if (left >= 2 && p[1] == '?') {
            close = find_in(s, p + 2, end, "?>", 2);
            if (close == NULL) {
                Py_RETURN_TRUE;
            }
            for (const char *c = p + 2; c < close && !strchr(" \t\r\n", *c); c++) { /* the target */
                if ((unsigned char)*c >= 0x80) {
                    Py_RETURN_FALSE;
                }
            }
            p = close + 2;
        }
        else {
            int high = 0;
            const char *c = tag_end(p + 1, end, &high);
            if (high) {
                Py_RETURN_FALSE;
            }
            if (c == NULL) {
                Py_RETURN_TRUE;
            }
            p = c;
        }
    }
    Py_RETURN_TRUE;
}

/* ---- hash_form ---- */

/* One pass over a str's code units of type T: ASCII letters lowered, "\n\n" -> " " (as bytes.replace does it:
 * left to right, not overlapping), other characters noted and encoded as UTF-8; status 1 at a lone
 * surrogate or too many astral characters. */
#define FOLD_LOOP(T)                                                                      \
    do {                                                                                  \
        const T *u = (const T *)data;                                                     \
        Py_ssize_t i = 0;                                                                 \
        while (i < n) {                                                                   \
            Py_ssize_t end = i; /* a run of ASCII but newlines, then its lower case (vectorized) */ \
            while (end < n && u[end] < 0x80 && u[end] != '\n') {                           \
                end++;                                                                    \
            }                                                                             \
            for (Py_ssize_t k = i; k < end; k++) {                                        \
                dst[len + (size_t)(k - i)] = (unsigned char)(u[k] + ((T)(u[k] - 'A') < 26 ? 32 : 0)); \
            }                                                                             \
            len += (size_t)(end - i);                                                     \
            if (end >= n) {                                                               \
                break;                                                                    \
            }                                                                             \
            Py_UCS4 c = u[end];                                                           \
            i = end + 1;                                                                  \
            if (c < 0x80) {                                                               \
                if (c == '\n' && i < n && u[i] == '\n') {                                 \
                    c = ' ';                                                              \
                    i++;                                                                  \
                }                                                                         \
                dst[len++] = ASCII_LOWER[c];                                              \
                continue;                                                                 \
            }                                                                             \
            if ((c >= 0xd800 && c <= 0xdfff) || note_char(c)) {                           \
                status = 1;                                                               \
                break;                                                                    \
            }                                                                             \
            len += encode_utf8(c, dst + len);                                             \
        }                                                                                 \
    } while (0)

/* hash_form's pass over ASCII text (FOLD_LOOP's steps, the newlines found by memchr): lower-cased into dst,
 * a blank line (two newlines) becomes a space; returns the length written (at most n). */
static size_t
fold_ascii_lines(const unsigned char *u, Py_ssize_t n, unsigned char *dst)
{
    size_t len = 0;
    Py_ssize_t i = 0;
    while (i < n) {
        const unsigned char *nl = memchr(u + i, '\n', (size_t)(n - i));
        Py_ssize_t end = nl == NULL ? n : nl - u;
        for (Py_ssize_t k = i; k < end; k++) {
            dst[len + (size_t)(k - i)] = (unsigned char)(u[k] + ((unsigned char)(u[k] - 'A') < 26 ? 32 : 0));
        }
        len += (size_t)(end - i);
        if (nl == NULL) {
            break;
        }
        i = end + 1;
        if (i < n && u[i] == '\n') {
            dst[len++] = ' ';
            i++;
        }
        else {
            dst[len++] = '\n';
        }
    }
    return len;
}

static PyObject *
hash_form(PyObject *module, PyObject *text)
{
    (void)module;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "hash_form() needs a str");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    if (n > PY_SSIZE_T_MAX / 4 || reserve(&text_out, (size_t)n * (kind == PyUnicode_1BYTE_KIND ? 2 : 4)) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_NoMemory();
        }
        return NULL;
    }
    unsigned char *dst = (unsigned char *)text_out.data;
    size_t len = 0;
    int status = 0;
    switch (kind) {
    case PyUnicode_1BYTE_KIND:
        if (PyUnicode_IS_ASCII(text)) {
            len += fold_ascii_lines((const unsigned char *)data, n, dst + len);
            break;
        }
        FOLD_LOOP(Py_UCS1);
        break;
    case PyUnicode_2BYTE_KIND:
        FOLD_LOOP(Py_UCS2);
        break;
    default:
        FOLD_LOOP(Py_UCS4);
    }
    PyObject *result = NULL;
    if (status == 0) {
        PyObject *folded = PyBytes_FromStringAndSize((const char *)dst, (Py_ssize_t)len);
        PyObject *chars = take_chars(folded != NULL);
        if (chars != NULL) {
            result = PyTuple_Pack(2, folded, chars);
            Py_DECREF(chars);
        }
        Py_XDECREF(folded);
    }
    else {
        take_chars(0);
        result = Py_NewRef(Py_None);
    }
    shrink(&text_out);
    return result;
}

/* ---- maybe_unsafe ---- */

static PyObject *
maybe_unsafe(PyObject *module, PyObject *raw)
{
    (void)module;
    if (!PyBytes_Check(raw)) {
        PyErr_SetString(PyExc_TypeError, "maybe_unsafe() needs bytes");
        return NULL;
    }
    const char *p = PyBytes_AS_STRING(raw);
    size_t n = (size_t)PyBytes_GET_SIZE(raw);
    return PyBool_FromLong(maybe_unsafe_bytes(p, n));
}

/* ---- has_nul_or_surrogate ---- */

static PyObject *
has_nul_or_surrogate(PyObject *module, PyObject *text)
{
    (void)module;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "has_nul_or_surrogate() needs a str");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    if (kind == PyUnicode_1BYTE_KIND) {
        return PyBool_FromLong(memchr(PyUnicode_1BYTE_DATA(text), 0, (size_t)n) != NULL);
    }
    int found = 0;
    if (kind == PyUnicode_2BYTE_KIND) {
        const Py_UCS2 *u = PyUnicode_2BYTE_DATA(text);
        for (Py_ssize_t i = 0; i < n; i++) {
            found |= u[i] == 0 || (u[i] & 0xf800) == 0xd800;
        }
    }
    else {
        const Py_UCS4 *u = PyUnicode_4BYTE_DATA(text);
        for (Py_ssize_t i = 0; i < n; i++) {
            found |= u[i] == 0 || (u[i] & 0xfffff800) == 0xd800;
        }
    }
    return PyBool_FromLong(found);
}

/* ---- plain_url ---- */

/* urls._PLAIN_URL_RE's character classes: host labels, path (after its '/'), query (after its '?'). */
static int
url_host_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

static int
url_path_char(unsigned char c)
{
    return url_host_char(c) || (c != 0 && strchr("._~!$&'()*+,;=@%/", c) != NULL);
}

typedef struct {
    Py_ssize_t start, len, name_len; /* a query pair, and the length of its name (up to the first '=') */
} UrlPair;

static int
url_pair_before(const char *q, const UrlPair *a, const UrlPair *b)
{
    /* strictly before, by name (ASCII: byte order is str order; a prefix first) */
    Py_ssize_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    int c = memcmp(q + a->start, q + b->start, (size_t)n);
    return c < 0 || (c == 0 && a->name_len < b->name_len);
}

/* Stable merge sort of pairs[lo, hi) by name (list.sort(key=name) keeps equal names in order). */
static void
url_sort_pairs(const char *q, UrlPair *pairs, UrlPair *tmp, Py_ssize_t lo, Py_ssize_t hi)
{
    if (hi - lo < 2) {
        return;
    }
    Py_ssize_t mid = lo + (hi - lo) / 2;
    url_sort_pairs(q, pairs, tmp, lo, mid);
    url_sort_pairs(q, pairs, tmp, mid, hi);
    Py_ssize_t i = lo, j = mid, k = lo;
    while (i < mid && j < hi) {
        tmp[k++] = url_pair_before(q, &pairs[j], &pairs[i]) ? pairs[j++] : pairs[i++];
    }
    while (i < mid) {
        tmp[k++] = pairs[i++];
    }
    while (j < hi) {
        tmp[k++] = pairs[j++];
    }
    memcpy(pairs + lo, tmp + lo, (size_t)(hi - lo) * sizeof(UrlPair));
}

/* urls.canonical_url(url) for a URL _PLAIN_URL_RE matches whole and whose path has no ';' (path parameters go
 * the Python way): the host lower-cased, "/" for no path, the query's pairs without those `dropped(pair)`
 * says to drop (tracking, secrets), sorted by name. None for any other URL (the Python path reads it). */
static PyObject *
plain_url(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "plain_url() needs a str and a callable");
        return NULL;
    }
    PyObject *url = args[0], *dropped = args[1];
    if (!PyUnicode_IS_ASCII(url)) {
        Py_RETURN_NONE;
    }
    const char *u = (const char *)PyUnicode_1BYTE_DATA(url);
    Py_ssize_t n = PyUnicode_GET_LENGTH(url), i;
    if (n >= 7 && memcmp(u, "http://", 7) == 0) {
        i = 7;
    }
    else if (n >= 8 && memcmp(u, "https://", 8) == 0) {
        i = 8;
    }
    else {
        Py_RETURN_NONE;
    }
    Py_ssize_t host = i;
    for (;;) { /* labels of [A-Za-z0-9-]+ joined by single dots */
        Py_ssize_t label = i;
        while (i < n && url_host_char((unsigned char)u[i])) {
            i++;
        }
        if (i == label) {
            Py_RETURN_NONE;
        }
        if (i < n && u[i] == '.') {
            i++;
            continue;
        }
        break;
    }
    Py_ssize_t host_end = i, path = i;
    if (i < n && u[i] == '/') {
        while (i < n && url_path_char((unsigned char)u[i])) {
            i++;
        }
        if (memchr(u + path, ';', (size_t)(i - path)) != NULL) {
            Py_RETURN_NONE;
        }
    }
    Py_ssize_t path_end = i, query = -1;
    if (i < n && u[i] == '?') {
        query = ++i;
        while (i < n && (url_path_char((unsigned char)u[i]) || u[i] == '?')) {
            i++;
        }
    }
    if (i != n) {
        Py_RETURN_NONE;
    }
    Py_ssize_t max_pairs = query < 0 ? 0 : n - query + 1;
    char *out = PyMem_Malloc((size_t)n + 2);
    UrlPair *pairs = PyMem_Malloc(((size_t)max_pairs * 2 + 1) * sizeof(UrlPair));
    PyObject *result = NULL;
    if (out == NULL || pairs == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t len = host;
    memcpy(out, u, (size_t)host);
    for (Py_ssize_t k = host; k < host_end; k++) {
        unsigned char c = (unsigned char)u[k];
        out[len++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    if (path_end > path) {
        memcpy(out + len, u + path, (size_t)(path_end - path));
        len += path_end - path;
    }
    else {
        out[len++] = '/';
    }
    Py_ssize_t kept = 0;
    for (Py_ssize_t start = query; start >= 0 && start <= n;) {
        const char *amp = memchr(u + start, '&', (size_t)(n - start));
        Py_ssize_t end = amp == NULL ? n : amp - u;
        if (end > start) {
            const char *eq = memchr(u + start, '=', (size_t)(end - start));
            Py_ssize_t name_len = eq == NULL ? end - start : eq - (u + start);
            PyObject *pair = PyUnicode_FromStringAndSize(u + start, end - start);
            PyObject *answer = pair == NULL ? NULL : PyObject_CallOneArg(dropped, pair);
            Py_XDECREF(pair);
            int drop = answer == NULL ? -1 : PyObject_IsTrue(answer);
            Py_XDECREF(answer);
            if (drop < 0) {
                goto done;
            }
            if (!drop) {
                pairs[kept++] = (UrlPair){start, end - start, name_len};
            }
        }
        start = end + 1;
    }
    url_sort_pairs(u, pairs, pairs + max_pairs, 0, kept);
    for (Py_ssize_t k = 0; k < kept; k++) {
        out[len++] = k == 0 ? '?' : '&';
        memcpy(out + len, u + pairs[k].start, (size_t)pairs[k].len);
        len += pairs[k].len;
    }
    result = PyUnicode_DecodeASCII(out, len, NULL);
done:
    PyMem_Free(out);
    PyMem_Free(pairs);
    return result;
}

/* ---- digest32 ---- */

static int sha_ni; /* whether the CPU has the SHA extensions (set at import) */

static PyObject *
digest32(PyObject *module, PyObject *data)
{
    (void)module;
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "digest32() needs bytes");
        return NULL;
    }
    if (!sha_ni) {
        PyErr_SetString(PyExc_RuntimeError, "digest32() needs the CPU's SHA extensions (see SHA_NI)");
        return NULL;
    }
    char hex[32];
    sha256_ni_hex32((const unsigned char *)PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data), hex);
    return PyUnicode_FromStringAndSize(hex, 32);
}

/* ---- fastfeed's byte screens ---- */

/* contains(data, needle): needle in data, for bytes (memmem: several times faster than bytes.__contains__ on a
 * document full of '<'). */
static PyObject *
contains(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "contains() needs two bytes");
        return NULL;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]), m = PyBytes_GET_SIZE(args[1]);
    if (m == 0) {
        Py_RETURN_TRUE;
    }
    const void *found = m > n ? NULL : memmem(PyBytes_AS_STRING(args[0]), (size_t)n, PyBytes_AS_STRING(args[1]), (size_t)m);
    return PyBool_FromLong(found != NULL);
}

/* count_byte(data, byte): data.count(bytes([byte])) (CPython's loop takes ~5 instructions a byte; this one is
 * vectorized). */
static PyObject *
count_byte(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyBytes_Check(args[0]) || !PyLong_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "count_byte() needs bytes and an int");
        return NULL;
    }
    long byte = PyLong_AsLong(args[1]);
    if (byte < 0 || byte > 255) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "count_byte(): byte must be in range(256)");
        }
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    const unsigned char c = (unsigned char)byte;
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]);
    size_t count = 0;
    while (n > 0) { /* blocks of at most 255 bytes: a byte-wide counter each, which the compiler vectorizes */
        Py_ssize_t block = n < 255 ? n : 255;
        unsigned char in_block = 0;
        for (Py_ssize_t i = 0; i < block; i++) {
            in_block += p[i] == c;
        }
        count += in_block;
        p += block;
        n -= block;
    }
    return PyLong_FromSize_t(count);
}

/* ---- content_digest (normalize._clean_content_hash in one call) ---- */

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* One code unit c of a str (not a plain ASCII run): hash_form's step for it at dst + *plen; i moves past a
 * "\n\n" pair. Returns 1 at a lone surrogate or too many astral characters. */
#define FOLD_ONE(c, u, i, n)                                                              \
    do {                                                                                  \
        if ((c) < 0x80) {                                                                 \
            Py_UCS4 c_ = (c);                                                             \
            if (c_ == '\n' && (i) < (n) && (u)[i] == '\n') {                              \
                c_ = ' ';                                                                 \
                (i)++;                                                                    \
            }                                                                             \
            dst[len++] = ASCII_LOWER[c_];                                                 \
        }                                                                                 \
        else if (((c) >= 0xd800 && (c) <= 0xdfff) || note_char(c)) {                      \
            status = 1;                                                                   \
        }                                                                                 \
        else {                                                                            \
            len += encode_utf8((c), dst + len);                                           \
        }                                                                                 \
    } while (0)

#define LANES16(x) ((x) * 0x0001000100010001ULL)

/* Appends hash_form's bytes of `text` (ASCII letters lowered, "\n\n" -> " ", other characters noted and encoded
 * as UTF-8) at text_out.data + *plen; 1 at a lone surrogate or too many astral characters. The caller reserved
 * 4 bytes a character. A 2-byte str (most non-ASCII news text) goes eight code units at a time (SSE2) or four
 * (lowered in a 64-bit word: each lane is below 0x80, so no carry crosses lanes) while they are ASCII other
 * than newlines. */
static int
fold_append(PyObject *text, size_t *plen)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    unsigned char *dst = (unsigned char *)text_out.data;
    size_t len = *plen;
    int status = 0;
    if (kind == PyUnicode_2BYTE_KIND) {
        const Py_UCS2 *u = (const Py_UCS2 *)data;
        Py_ssize_t i = 0;
        while (i < n && status == 0) {
#ifdef __SSE2__
            while (i + 8 <= n) { /* eight units: packed to bytes (saturated: >= 0x80 keeps its high bit) */
                __m128i b = _mm_loadu_si128((const __m128i *)(u + i));
                b = _mm_packus_epi16(b, b);
                if ((_mm_movemask_epi8(b) | _mm_movemask_epi8(_mm_cmpeq_epi8(b, _mm_set1_epi8('\n')))) & 0xff) {
                    break;
                }
                __m128i upper = _mm_and_si128(_mm_cmpgt_epi8(b, _mm_set1_epi8('A' - 1)),
                                              _mm_cmpgt_epi8(_mm_set1_epi8('Z' + 1), b));
                _mm_storel_epi64((__m128i *)(dst + len), _mm_add_epi8(b, _mm_and_si128(upper, _mm_set1_epi8(32))));
                len += 8;
                i += 8;
            }
#endif
            while (i + 4 <= n) {
                uint64_t w;
                memcpy(&w, u + i, 8);
                if (w & LANES16(0xff80)) {
                    break; /* a unit >= 0x80 */
                }
                uint64_t t = w ^ LANES16('\n'); /* a newline's lane is 0; every lane is below 0x80 */
                if (((t + LANES16(0x7f)) & LANES16(0x80)) != LANES16(0x80)) {
                    break;
                }
                uint64_t upper = ((w + LANES16(0x80 - 'A')) & ~(w + LANES16(0x80 - 'Z' - 1))) & LANES16(0x80);
                uint64_t low = w + (upper >> 2); /* 0x80 >> 2 == 32: 'A'..'Z' -> 'a'..'z' */
                dst[len] = (unsigned char)low;
                dst[len + 1] = (unsigned char)(low >> 16);
                dst[len + 2] = (unsigned char)(low >> 32);
                dst[len + 3] = (unsigned char)(low >> 48);
                len += 4;
                i += 4;
            }
            if (i >= n) {
                break;
            }
            Py_UCS4 c = u[i++];
            FOLD_ONE(c, u, i, n);
        }
    }
    else if (kind == PyUnicode_1BYTE_KIND && PyUnicode_IS_ASCII(text)) { /* hash_form's ASCII pass */
        len += fold_ascii_lines((const unsigned char *)data, n, dst + len);
    }
    else if (kind == PyUnicode_1BYTE_KIND) {
        FOLD_LOOP(Py_UCS1);
    }
    else {
        FOLD_LOOP(Py_UCS4);
    }
    *plen = len;
    return status;
}

/* content_digest(title, body): digest32(hash_form(f"{title} {body}" if title and body else title or body))
 * without building the joined text or the folded bytes (the " " between the two cannot be part of a "\n\n").
 * Returns the digest when the text is ASCII, (digest, distinct non-ASCII characters) otherwise for the caller
 * to check as it checks hash_form's, None where hash_form would (lone surrogates, too many astral characters)
 * or without the CPU's SHA extensions. */
static PyObject *
content_digest(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyUnicode_Check(args[0]) || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "content_digest() needs two str");
        return NULL;
    }
    PyObject *title = args[0], *body = args[1];
    Py_ssize_t nt = PyUnicode_GET_LENGTH(title), nb = PyUnicode_GET_LENGTH(body);
    if (nt > PY_SSIZE_T_MAX / 8 || nb > PY_SSIZE_T_MAX / 8 ||
        reserve(&text_out, ((size_t)nt + (size_t)nb + 1) * 4) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_NoMemory();
        }
        return NULL;
    }
    size_t len = 0;
    int status = fold_append(title, &len);
    if (status == 0 && nt > 0 && nb > 0) {
        ((unsigned char *)text_out.data)[len++] = ' ';
    }
    if (status == 0) {
        status = fold_append(body, &len);
    }
    PyObject *result = NULL;
    if (status == 0 && sha_ni) { /* (folded first all the same: callgrind, which hides SHA, counts the pass) */
        char hex[32];
        sha256_ni_hex32((const unsigned char *)text_out.data, len, hex);
        PyObject *digest = PyUnicode_FromStringAndSize(hex, 32);
        if (n_distinct == 0 || digest == NULL) {
            take_chars(0);
            result = digest;
        }
        else {
            PyObject *chars = take_chars(1);
            if (chars != NULL) {
                result = PyTuple_Pack(2, digest, chars);
                Py_DECREF(chars);
            }
            Py_DECREF(digest);
        }
    }
    else {
        take_chars(0);
        result = Py_NewRef(Py_None);
    }
    shrink(&text_out);
    return result;
}

/* plain_to_text(text) where the compiled pass settles it with ASCII paragraphs (a new reference), or None
 * (a new reference) where the Python steps would decide (markup, a script URL, non-ASCII characters). */
static PyObject *
plain_ascii(PyObject *text)
{
    PyObject *done = paragraphs_of(text, 1);
    if (done == NULL || done == Py_None) {
        return done;
    }
    PyObject *clean = PyTuple_GET_ITEM(done, 0), *chars = PyTuple_GET_ITEM(done, 1);
    PyObject *result = Py_NewRef(PyUnicode_GET_LENGTH(chars) == 0 ? clean : Py_None);
    Py_DECREF(done);
    return result;
}

/* plain_story(title, body, summary): normalize's texts of an entry none of whose three is HTML, in one call:
 * (clean_inline(title, False), body, summary, content hash) as normalize computes them (an empty cleaned
 * summary -> None; no body -> the summary; the hash None without the CPU's SHA extensions), or None where any
 * of them is not ASCII text the compiled passes settle or the title breaks into paragraphs: the Python steps
 * decide. */
static PyObject *
plain_story(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "plain_story() takes 3 arguments");
        return NULL;
    }
    if (!PyUnicode_Check(args[0]) || !PyUnicode_Check(args[1]) || !(args[2] == Py_None || PyUnicode_Check(args[2]))) {
        Py_RETURN_NONE; /* (e.g. a title of None: the Python steps take it) */
    }
    PyObject *texts[3] = {NULL, NULL, NULL}; /* title, body, summary */
    PyObject *result = NULL;
    for (int i = 0; i < 3; i++) {
        PyObject *text = args[i];
        texts[i] = text == Py_None || PyUnicode_GET_LENGTH(text) == 0 ? Py_NewRef(i == 2 ? Py_None : text) : plain_ascii(text);
        if (texts[i] == NULL || (texts[i] == Py_None && text != Py_None && PyUnicode_GET_LENGTH(text) > 0)) {
            goto done; /* an error, or the Python steps decide */
        }
    }
    if (PyUnicode_FindChar(texts[0], '\n', 0, PyUnicode_GET_LENGTH(texts[0]), 1) != -1) {
        goto done; /* a title in paragraphs: clean_inline joins them */
    }
    if (texts[2] != Py_None && PyUnicode_GET_LENGTH(texts[2]) == 0) {
        Py_SETREF(texts[2], Py_NewRef(Py_None));
    }
    if (PyUnicode_GET_LENGTH(texts[1]) == 0 && texts[2] != Py_None) {
        Py_SETREF(texts[1], Py_NewRef(texts[2]));
    }
    PyObject *pair[2] = {texts[0], texts[1]};
    PyObject *digest = content_digest(module, pair, 2);
    if (digest != NULL) {
        result = PyTuple_Pack(4, texts[0], texts[1], texts[2], PyUnicode_Check(digest) ? digest : Py_None);
        Py_DECREF(digest);
    }
done:
    if (result == NULL && !PyErr_Occurred()) {
        result = Py_NewRef(Py_None);
    }
    for (int i = 0; i < 3; i++) {
        Py_XDECREF(texts[i]);
    }
    return result;
}

#undef FOLD_ONE
#undef LANES16

static PyMethodDef module_methods[] = {
    {"paragraphs", (PyCFunction)paragraphs, METH_O,
     "text._paragraphs_utf8 in one pass: (text, distinct non-ASCII characters), or None."},
    {"plain_text", (PyCFunction)plain_text, METH_O,
     "text.plain_to_text for text without '<' or 't:'/'T:' whose paragraphs hold no 't:'/'T:' (there "
     "strip_unsafe and the final screen change nothing): as paragraphs(), else None."},
    {"hash_form", (PyCFunction)hash_form, METH_O,
     "text.casefold().encode('utf-8').replace(b'\\n\\n', b' ') for text whose non-ASCII characters fold to "
     "themselves: (bytes, distinct non-ASCII characters), or None (lone surrogates)."},
    {"maybe_unsafe", (PyCFunction)maybe_unsafe, METH_O,
     "Whether UTF-8 text holds '<' or 't:'/'T:' (what text.strip_unsafe may act on)."},
    {"has_nul_or_surrogate", (PyCFunction)has_nul_or_surrogate, METH_O,
     "Whether a str holds NUL or a lone surrogate."},
    {"cdata_as_text", (PyCFunction)cdata_as_text, METH_O,
     "The XML document with its CDATA sections inside the root element as escaped text, or None (none, or "
     "not plain)."},
    {"markup_names_ascii", (PyCFunction)markup_names_ascii, METH_O,
     "False when a tag outside its quoted values, or a PI's target, has a byte beyond ASCII (or the document a "
     "\"<!\" declaration other than a comment or CDATA)."},
    {"simple_html", (PyCFunction)simple_html, METH_O,
     "Walker.paragraphs of libxml2's tree of simple HTML (a few well-nested elements, plain references), read "
     "without building it; None for any other HTML."},
    {"simple_html_elements", (PyCFunction)simple_html_elements, METH_NOARGS,
     "{element: gives paragraph breaks} of the elements simple_html reads."},
    {"nothing_to_cut", (PyCFunction)nothing_to_cut, METH_O,
     "prescreen._nothing_to_cut(data): whether every author field is short text or one short CDATA section."},
    {"plain_url", (PyCFunction)(void (*)(void))plain_url, METH_FASTCALL,
     "urls.canonical_url(url) for a URL urls._PLAIN_URL_RE matches whole (query pairs kept unless "
     "dropped(name)), else None."},
    {"digest32", (PyCFunction)digest32, METH_O,
     "hashlib.sha256(data).hexdigest()[:32] for bytes, where SHA_NI is true (RuntimeError elsewhere)."},
    {"contains", (PyCFunction)(void (*)(void))contains, METH_FASTCALL, "needle in data, for bytes (memmem)."},
    {"count_byte", (PyCFunction)(void (*)(void))count_byte, METH_FASTCALL, "data.count(bytes([byte])), for bytes."},
    {"plain_story", (PyCFunction)(void (*)(void))plain_story, METH_FASTCALL,
     "normalize's (title, body, summary, content hash or None) of an entry with no HTML text, where all are "
     "ASCII text the compiled passes settle; else None."},
    {"content_digest", (PyCFunction)(void (*)(void))content_digest, METH_FASTCALL,
     "normalize._clean_content_hash(title, body) in one pass: the digest, (digest, distinct non-ASCII "
     "characters) for the caller to check, or None (as hash_form, or without SHA_NI)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef accel_module = {
    PyModuleDef_HEAD_INIT,
    "pipeline.parsing._accel",
    "The parsing stage's whole-text passes in C (see pipeline/parsing/text.py and normalize.py).",
    -1,
    module_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

static int add_column_functions(PyObject *module); /* at the end of this file */

PyMODINIT_FUNC
PyInit__accel(void)
{
    init_classes();
    init_simple_text();
    init_cdata_class();
    PyObject *etree = PyImport_ImportModule("lxml.etree");
    if (etree == NULL) {
        return NULL;
    }
    PyObject *type = PyObject_GetAttrString(etree, "_Element");
    Py_DECREF(etree);
    if (type == NULL) {
        return NULL;
    }
    if (!PyType_Check(type) || ((PyTypeObject *)type)->tp_basicsize != (Py_ssize_t)sizeof(LxmlElement)) {
        Py_DECREF(type);
        PyErr_SetString(PyExc_ImportError, "lxml.etree._Element has not the layout this module reads");
        return NULL;
    }
    element_type = (PyTypeObject *)type; /* kept for the module's lifetime */
    if (PyType_Ready(&WalkerType) < 0 || PyType_Ready(&ItemReaderType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&accel_module);
    if (module == NULL) {
        return NULL;
    }
    sha_ni = sha256_ni_available();
    if (PyModule_AddObjectRef(module, "SHA_NI", sha_ni ? Py_True : Py_False) < 0 ||
        PyModule_AddObjectRef(module, "Walker", (PyObject *)&WalkerType) < 0 ||
        PyModule_AddObjectRef(module, "ItemReader", (PyObject *)&ItemReaderType) < 0 ||
        add_column_functions(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}

/* --- Arrow column buffers (pipeline/lake/parquet.py's to_table) ---------------------------------------------
 *
 * columns(rows, names): the rows' values by column (below).
 * string_column(values): the buffers of pa.array(values, pa.string()) for a tuple or list of exact str and
 *   None: (validity bytes or None, null count, int32 offsets bytes, UTF-8 data bytes).
 * string_lists(values): the buffers of pa.array(values, pa.list_(pa.string())) for a sequence of exact lists of
 *   exact str: (list offsets bytes, string offsets bytes, data bytes, number of strings).
 * topic_hits(values): the buffers of pa.array(values, list<struct<topic: string, term: string, count: int32,
 *   in_title: bool>>) for a sequence of exact lists of dicts holding exactly those four keys, topic and term
 *   exact str, count an exact int within int32, in_title a bool: (list offsets, topic offsets, topic data, term
 *   offsets, term data, counts (int32), in_title bitmap, number of hits). A value may also be packed hits (the
 *   tagger's tag(..., packed=True)): an exact tuple of the hits' four values one hit after the other.
 * Each returns None for anything else (another type, a lone surrogate, more than 2 GiB of text), and the
 * caller then converts with pa.array, which gives the same array or raises its own error. */

typedef struct {
    const char *ptr;
    Py_ssize_t len;
} ColStr;

/* The UTF-8 of an exact str (cached in the object, as pyarrow reads it), or -1 (error cleared) */
static int
col_utf8(PyObject *value, ColStr *out)
{
    if (!PyUnicode_CheckExact(value)) {
        return -1;
    }
    out->ptr = PyUnicode_AsUTF8AndSize(value, &out->len);
    if (out->ptr == NULL) {
        PyErr_Clear();
        return -1;
    }
    return 0;
}

/* offsets (int32, n + 1) and data of n strings; NULL on overflow (no error set) or memory error (set) */
static int
col_fill_strings(const ColStr *strs, Py_ssize_t n, PyObject **offsets, PyObject **data)
{
    int64_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        total += strs[i].len;
    }
    if (total > INT32_MAX) {
        return 1;
    }
    *offsets = PyBytes_FromStringAndSize(NULL, (n + 1) * (Py_ssize_t)sizeof(int32_t));
    *data = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (*offsets == NULL || *data == NULL) {
        Py_CLEAR(*offsets);
        Py_CLEAR(*data);
        return -1;
    }
    int32_t *off = (int32_t *)PyBytes_AS_STRING(*offsets);
    char *dst = PyBytes_AS_STRING(*data);
    int32_t at = 0;
    off[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (strs[i].len) {
            memcpy(dst + at, strs[i].ptr, (size_t)strs[i].len);
        }
        at += (int32_t)strs[i].len;
        off[i + 1] = at;
    }
    return 0;
}

/* values[j] = dict[names[j]] (borrowed) for j < k when the dict's keys are exactly those objects in that order
   (as a dict built with the same keys in the same order has them: PyDict_Next and one pointer comparison a
   key, no hashing): 1; 0 when they are not (the caller looks each name up). */
static int
values_in_order(PyObject *dict, PyObject *const *names, Py_ssize_t k, PyObject **values)
{
    if (PyDict_GET_SIZE(dict) != k) {
        return 0;
    }
    Py_ssize_t pos = 0, j = 0;
    PyObject *key, *value;
    while (j < k && PyDict_Next(dict, &pos, &key, &value)) {
        if (key != names[j]) {
            return 0;
        }
        values[j++] = value;
    }
    return j == k;
}

/* columns(rows, names): [tuple(row[name] for row in rows) for name in names] for a list of exact dicts (the
   stories), read row by row (in key order where a row's keys are `names` in order: values_in_order);
   KeyError(name) for a row without it, as operator.itemgetter; None when a row is not an exact dict (the
   caller then takes the values in Python). */
static PyObject *
columns(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 2 || !PyList_CheckExact(args[0]) || !PyTuple_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "columns(rows: list, names: tuple)");
        return NULL;
    }
    PyObject *rows = args[0], *names = args[1];
    Py_ssize_t n = PyList_GET_SIZE(rows), k = PyTuple_GET_SIZE(names);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyDict_CheckExact(PyList_GET_ITEM(rows, i))) {
            Py_RETURN_NONE;
        }
    }
    PyObject *out = PyList_New(k);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t j = 0; j < k; j++) {
        PyObject *column = PyTuple_New(n);
        if (column == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, j, column);
    }
    PyObject *stack[32], **found = k <= 32 ? stack : PyMem_New(PyObject *, (size_t)k);
    if (found == NULL) {
        Py_DECREF(out);
        return PyErr_NoMemory();
    }
    PyObject *const *wanted = &PyTuple_GET_ITEM(names, 0);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        if (values_in_order(row, wanted, k, found)) {
            for (Py_ssize_t j = 0; j < k; j++) {
                PyTuple_SET_ITEM(PyList_GET_ITEM(out, j), i, Py_NewRef(found[j]));
            }
            continue;
        }
        for (Py_ssize_t j = 0; j < k; j++) {
            PyObject *name = PyTuple_GET_ITEM(names, j);
            PyObject *value = PyDict_GetItemWithError(row, name);
            if (value == NULL) {
                if (!PyErr_Occurred()) {
                    PyErr_SetObject(PyExc_KeyError, name);
                }
                Py_DECREF(out); /* the columns' slots not filled yet are NULL, which tuple dealloc skips */
                if (found != stack) {
                    PyMem_Free(found);
                }
                return NULL;
            }
            Py_INCREF(value);
            PyTuple_SET_ITEM(PyList_GET_ITEM(out, j), i, value);
        }
    }
    if (found != stack) {
        PyMem_Free(found);
    }
    return out;
}

/* An Arrow validity bitmap of items[:n]: bit i set where items[i] is not None (new bytes, or NULL with
   MemoryError set) */
static PyObject *
validity_bitmap(PyObject *const *items, Py_ssize_t n)
{
    PyObject *validity = PyBytes_FromStringAndSize(NULL, (n + 7) / 8);
    if (validity == NULL) {
        return NULL;
    }
    unsigned char *bits = (unsigned char *)PyBytes_AS_STRING(validity);
    memset(bits, 0, (size_t)((n + 7) / 8));
    for (Py_ssize_t i = 0; i < n; i++) {
        if (items[i] != Py_None) {
            bits[i >> 3] |= (unsigned char)(1u << (i & 7));
        }
    }
    return validity;
}

static PyObject *
string_column(PyObject *self, PyObject *values)
{
    (void)self;
    PyObject *seq = PySequence_Fast(values, "values must be a sequence");
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    ColStr *strs = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(ColStr));
    PyObject *validity = NULL, *offsets = NULL, *data = NULL, *result = NULL;
    if (strs == NULL) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    Py_ssize_t nulls = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (items[i] == Py_None) {
            strs[i].ptr = NULL;
            strs[i].len = 0;
            nulls++;
        } else if (col_utf8(items[i], &strs[i]) < 0) {
            goto other;
        }
    }
    if (nulls && (validity = validity_bitmap(items, n)) == NULL) {
        goto done;
    }
    int filled = col_fill_strings(strs, n, &offsets, &data);
    if (filled > 0) {
        goto other;
    }
    if (filled == 0) {
        result = Py_BuildValue("(OnNN)", validity ? validity : Py_None, nulls, offsets, data);
    }
    goto done;
other:
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(validity);
    PyMem_Free(strs);
    Py_DECREF(seq);
    return result;
}

static PyObject *
string_lists(PyObject *self, PyObject *values)
{
    (void)self;
    PyObject *seq = PySequence_Fast(values, "values must be a sequence");
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    PyObject *lists = NULL, *offsets = NULL, *data = NULL, *result = NULL;
    ColStr *strs = NULL;
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyList_CheckExact(items[i])) {
            goto other;
        }
        count += PyList_GET_SIZE(items[i]);
    }
    if (count > INT32_MAX) {
        goto other;
    }
    strs = PyMem_Malloc((size_t)(count ? count : 1) * sizeof(ColStr));
    lists = PyBytes_FromStringAndSize(NULL, (n + 1) * (Py_ssize_t)sizeof(int32_t));
    if (strs == NULL || lists == NULL) {
        if (strs == NULL) {
            PyErr_NoMemory();
        }
        goto done;
    }
    int32_t *loff = (int32_t *)PyBytes_AS_STRING(lists);
    Py_ssize_t k = 0;
    loff[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *list = items[i];
        Py_ssize_t m = PyList_GET_SIZE(list);
        if (k + m > count) { /* the list grew: not what was counted */
            goto other;
        }
        for (Py_ssize_t j = 0; j < m; j++) {
            if (col_utf8(PyList_GET_ITEM(list, j), &strs[k++]) < 0) {
                goto other;
            }
        }
        loff[i + 1] = (int32_t)k;
    }
    if (k != count) {
        goto other;
    }
    int filled = col_fill_strings(strs, count, &offsets, &data);
    if (filled > 0) {
        goto other;
    }
    if (filled == 0) {
        result = Py_BuildValue("(ONNn)", lists, offsets, data, count);
    }
    goto done;
other:
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(lists);
    PyMem_Free(strs);
    Py_DECREF(seq);
    return result;
}

static PyObject *hit_keys[4]; /* "topic", "term", "count", "in_title" (interned) */

/* A hit dict's four values in hit_keys' order, or -1 (error cleared) where it is not a dict of those keys */
static int
hit_values(PyObject *hit, PyObject **v)
{
    if (!PyDict_CheckExact(hit) || PyDict_GET_SIZE(hit) != 4) {
        return -1;
    }
    if (values_in_order(hit, hit_keys, 4, v)) { /* the tagger's hits: copies of one template */
        return 0;
    }
    for (int i = 0; i < 4; i++) {
        if ((v[i] = PyDict_GetItemWithError(hit, hit_keys[i])) == NULL) {
            PyErr_Clear();
            return -1;
        }
    }
    return 0;
}

static PyObject *
topic_hits(PyObject *self, PyObject *values)
{
    (void)self;
    PyObject *seq = PySequence_Fast(values, "values must be a sequence");
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    PyObject *lists = NULL, *topic_off = NULL, *topic_data = NULL, *term_off = NULL, *term_data = NULL;
    PyObject *counts = NULL, *flags = NULL, *result = NULL;
    ColStr *strs = NULL;
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyList_CheckExact(items[i])) {
            count += PyList_GET_SIZE(items[i]);
        }
        else if (PyTuple_CheckExact(items[i]) && PyTuple_GET_SIZE(items[i]) % 4 == 0) { /* packed */
            count += PyTuple_GET_SIZE(items[i]) / 4;
        }
        else {
            goto other;
        }
    }
    if (count > INT32_MAX / 2) {
        goto other;
    }
    strs = PyMem_Malloc((size_t)(count ? 2 * count : 1) * sizeof(ColStr));
    lists = PyBytes_FromStringAndSize(NULL, (n + 1) * (Py_ssize_t)sizeof(int32_t));
    counts = PyBytes_FromStringAndSize(NULL, count * (Py_ssize_t)sizeof(int32_t));
    flags = PyBytes_FromStringAndSize(NULL, (count + 7) / 8);
    if (strs == NULL || lists == NULL || counts == NULL || flags == NULL) {
        if (strs == NULL) {
            PyErr_NoMemory();
        }
        goto done;
    }
    int32_t *loff = (int32_t *)PyBytes_AS_STRING(lists);
    int32_t *cnt = (int32_t *)PyBytes_AS_STRING(counts);
    unsigned char *bits = (unsigned char *)PyBytes_AS_STRING(flags);
    memset(bits, 0, (size_t)((count + 7) / 8));
    Py_ssize_t k = 0;
    loff[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *list = items[i];
        const int packed = PyTuple_CheckExact(list); /* (a tuple is never changed meanwhile) */
        Py_ssize_t m = packed ? PyTuple_GET_SIZE(list) / 4 : PyList_GET_SIZE(list);
        if (k + m > count) {
            goto other;
        }
        for (Py_ssize_t j = 0; j < m; j++, k++) {
            PyObject *v[4];
            if (packed) {
                memcpy(v, &PyTuple_GET_ITEM(list, 4 * j), sizeof v);
            }
            else if (hit_values(PyList_GET_ITEM(list, j), v) < 0) {
                goto other;
            }
            PyObject *topic = v[0], *term = v[1], *number = v[2], *flag = v[3];
            if (col_utf8(topic, &strs[k]) < 0 || col_utf8(term, &strs[count + k]) < 0) {
                goto other;
            }
            if (!PyLong_CheckExact(number) || !PyBool_Check(flag)) {
                goto other;
            }
            int overflow = 0;
            long c = PyLong_AsLongAndOverflow(number, &overflow);
            if (overflow || c < INT32_MIN || c > INT32_MAX) {
                PyErr_Clear();
                goto other;
            }
            cnt[k] = (int32_t)c;
            if (flag == Py_True) {
                bits[k >> 3] |= (unsigned char)(1u << (k & 7));
            }
        }
        loff[i + 1] = (int32_t)k;
    }
    if (k != count) {
        goto other;
    }
    int filled = col_fill_strings(strs, count, &topic_off, &topic_data);
    if (filled == 0) {
        filled = col_fill_strings(strs + count, count, &term_off, &term_data);
    }
    if (filled > 0) {
        goto other;
    }
    if (filled == 0) {
        result = Py_BuildValue("(OOOOOOOn)", lists, topic_off, topic_data, term_off, term_data, counts, flags,
                               count);
    }
    goto done;
other:
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(lists);
    Py_XDECREF(topic_off);
    Py_XDECREF(topic_data);
    Py_XDECREF(term_off);
    Py_XDECREF(term_data);
    Py_XDECREF(counts);
    Py_XDECREF(flags);
    PyMem_Free(strs);
    Py_DECREF(seq);
    return result;
}

/* Days from 1970-01-01 to year-month-day of the proleptic Gregorian calendar (H. Hinnant's days_from_civil) */
static int64_t
days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* timestamp_column(values): the buffers of pa.array(values, pa.timestamp("us", "UTC")) for values that are
   each None or an exact datetime whose tzinfo is the UTC singleton (what normalize gives): (validity or None,
   null count, int64 microseconds since the epoch); None for any other value (pa.array decides then). A
   value repeated (a batch's fetched_at) is converted once. */
static PyObject *
timestamp_column(PyObject *self, PyObject *values)
{
    (void)self;
    PyObject *seq = PySequence_Fast(values, "values must be a sequence");
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), nulls = 0;
    PyObject **items = PySequence_Fast_ITEMS(seq);
    PyObject *data = PyBytes_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(int64_t)), *validity = NULL;
    PyObject *result = NULL;
    if (data == NULL) {
        goto done;
    }
    int64_t *micros = (int64_t *)PyBytes_AS_STRING(data), last_micros = 0;
    PyObject *last = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = items[i];
        if (v == Py_None) {
            micros[i] = 0;
            nulls++;
            continue;
        }
        if (v == last) {
            micros[i] = last_micros;
            continue;
        }
        if (!PyDateTime_CheckExact(v) || !PyDateTime_DATE_GET_TZINFO(v) ||
            PyDateTime_DATE_GET_TZINFO(v) != PyDateTime_TimeZone_UTC) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        const int64_t days = days_from_civil(PyDateTime_GET_YEAR(v), PyDateTime_GET_MONTH(v), PyDateTime_GET_DAY(v));
        const int64_t seconds = days * 86400 + PyDateTime_DATE_GET_HOUR(v) * 3600 +
                                PyDateTime_DATE_GET_MINUTE(v) * 60 + PyDateTime_DATE_GET_SECOND(v);
        micros[i] = last_micros = seconds * 1000000 + PyDateTime_DATE_GET_MICROSECOND(v);
        last = v;
    }
    if (nulls && (validity = validity_bitmap(items, n)) == NULL) {
        goto done;
    }
    result = Py_BuildValue("(OnO)", validity ? validity : Py_None, nulls, data);
done:
    Py_XDECREF(validity);
    Py_XDECREF(data);
    Py_DECREF(seq);
    return result;
}

/* BLAKE2b (RFC 7693) with a 1-byte digest and no key: the key index's shard of a story id */
static const uint64_t BLAKE2B_IV[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};
static const unsigned char BLAKE2B_SIGMA[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4}, {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13}, {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11}, {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5}, {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
};

static inline uint64_t
rotr64(uint64_t x, int n)
{
    return (x >> n) | (x << (64 - n));
}

#define B2B_G(a, b, c, d, x, y)           \
    do {                                  \
        v[a] = v[a] + v[b] + (x);         \
        v[d] = rotr64(v[d] ^ v[a], 32);   \
        v[c] = v[c] + v[d];               \
        v[b] = rotr64(v[b] ^ v[c], 24);   \
        v[a] = v[a] + v[b] + (y);         \
        v[d] = rotr64(v[d] ^ v[a], 16);   \
        v[c] = v[c] + v[d];               \
        v[b] = rotr64(v[b] ^ v[c], 63);   \
    } while (0)

static void
blake2b_compress(uint64_t h[8], const unsigned char block[128], uint64_t t, int last)
{
    uint64_t m[16], v[16];
    for (int i = 0; i < 16; i++) {
        uint64_t w = 0;
        for (int j = 7; j >= 0; j--) {
            w = w << 8 | block[8 * i + j];
        }
        m[i] = w;
    }
    for (int i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = BLAKE2B_IV[i];
    }
    v[12] ^= t; /* messages here are far below 2**64 bytes: the counter's high word stays 0 */
    if (last) {
        v[14] = ~v[14];
    }
    for (int r = 0; r < 12; r++) {
        const unsigned char *s = BLAKE2B_SIGMA[r];
        B2B_G(0, 4, 8, 12, m[s[0]], m[s[1]]);
        B2B_G(1, 5, 9, 13, m[s[2]], m[s[3]]);
        B2B_G(2, 6, 10, 14, m[s[4]], m[s[5]]);
        B2B_G(3, 7, 11, 15, m[s[6]], m[s[7]]);
        B2B_G(0, 5, 10, 15, m[s[8]], m[s[9]]);
        B2B_G(1, 6, 11, 12, m[s[10]], m[s[11]]);
        B2B_G(2, 7, 8, 13, m[s[12]], m[s[13]]);
        B2B_G(3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
    for (int i = 0; i < 8; i++) {
        h[i] ^= v[i] ^ v[i + 8];
    }
}

/* hashlib.blake2b(data, digest_size=1).digest()[0] */
static unsigned char
blake2b_byte(const unsigned char *data, Py_ssize_t n)
{
    uint64_t h[8];
    memcpy(h, BLAKE2B_IV, sizeof h);
    h[0] ^= 0x01010001ULL; /* digest length 1, no key, fanout 1, depth 1 */
    uint64_t t = 0;
    while (n > 128) {
        t += 128;
        blake2b_compress(h, data, t, 0);
        data += 128;
        n -= 128;
    }
    unsigned char block[128] = {0};
    if (n > 0) {
        memcpy(block, data, (size_t)n);
    }
    blake2b_compress(h, block, t + (uint64_t)n, 1);
    return (unsigned char)(h[0] & 0xff);
}

/* shard_numbers(ids): bytes of hashlib.blake2b(id.encode("utf-8"), digest_size=1).digest()[0] for a list of
   str; None when an item is not an exact str or has no UTF-8 (a lone surrogate: the caller's encoding with
   surrogatepass decides then). */
static PyObject *
shard_numbers(PyObject *self, PyObject *ids)
{
    (void)self;
    if (!PyList_CheckExact(ids)) {
        Py_RETURN_NONE;
    }
    Py_ssize_t n = PyList_GET_SIZE(ids);
    PyObject *out = PyBytes_FromStringAndSize(NULL, n);
    if (out == NULL) {
        return NULL;
    }
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(out);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *id = PyList_GET_ITEM(ids, i);
        Py_ssize_t len;
        const char *utf8 = PyUnicode_CheckExact(id) ? PyUnicode_AsUTF8AndSize(id, &len) : NULL;
        if (utf8 == NULL) {
            PyErr_Clear();
            Py_DECREF(out);
            Py_RETURN_NONE;
        }
        dst[i] = blake2b_byte((const unsigned char *)utf8, len);
    }
    return out;
}

static PyMethodDef column_methods[] = {
    {"columns", (PyCFunction)(void (*)(void))columns, METH_FASTCALL,
     "[tuple(row[name] for row in rows) for name in names] for a list of exact dicts, or None."},
    {"string_column", (PyCFunction)string_column, METH_O,
     "The buffers of pa.array(values, pa.string()): (validity or None, null count, offsets, data), or None."},
    {"string_lists", (PyCFunction)string_lists, METH_O,
     "The buffers of pa.array(values, pa.list_(pa.string())): (list offsets, offsets, data, strings), or None."},
    {"shard_numbers", (PyCFunction)shard_numbers, METH_O,
     "bytes of hashlib.blake2b(id.encode(), digest_size=1).digest()[0] for a list of str, or None."},
    {"timestamp_column", (PyCFunction)timestamp_column, METH_O,
     "The buffers of pa.array(values, pa.timestamp('us', 'UTC')) for None and UTC datetimes: (validity or "
     "None, null count, int64 data), or None."},
    {"topic_hits", (PyCFunction)topic_hits, METH_O,
     "The buffers of the topic_hits column: (list offsets, topic offsets, topic data, term offsets, term data, "
     "counts, in_title bits, hits), or None."},
    {NULL, NULL, 0, NULL},
};

static int
add_column_functions(PyObject *module)
{
    PyDateTime_IMPORT; /* timestamp_column's datetime C API */
    if (PyDateTimeAPI == NULL) {
        return -1;
    }
    static const char *names[4] = {"topic", "term", "count", "in_title"};
    for (int i = 0; i < 4; i++) {
        if (hit_keys[i] == NULL && (hit_keys[i] = PyUnicode_InternFromString(names[i])) == NULL) {
            return -1;
        }
    }
    return PyModule_AddFunctions(module, column_methods);
}
