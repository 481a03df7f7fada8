/*
 * shoal's native front: `shoal submit` without starting Python.
 *
 * Scripts call `shoal submit` once per job. A Python process needs ~15 ms here before the first
 * line of shoal runs, more than the submission itself costs the controller; this program sends
 * the common submissions straight to a controller's HTTP edge (POST /shoal.v1.Batch/SubmitJob,
 * JSON; controller/http/native.py) and prints what the Python CLI prints.
 *
 * It is a front, not a second CLI: everything it is not certain to do exactly as the Python
 * CLI does, it hands over, untouched, by exec'ing the Python CLI (SHOAL_PYTHON -P -c "...main()"
 * ARGS: what pip's console script runs). Handed over: every command but `submit`; any flag
 * outside the plain ones in OPTIONS below, or a form shoal/cli/quick.py would also leave to
 * argparse; a value that needs converting beyond plain digits; any byte outside ASCII (the
 * Python CLI decodes by the locale); --wait, --from-file, --ca; no http:// address (gRPC,
 * https); and, before anything was sent, an address that does not answer as a shoal edge (the
 * Python CLI then falls back to gRPC) or a follower naming its leader. A submission is never sent twice: once the request may have reached a
 * controller, this program answers itself, as wire.py does (the same one-line errors, exit 3 for
 * a refusal and 4 when no controller could answer). tests/unit/cli/test_native.py runs both on
 * generated command lines and compares requests, output and exit codes.
 *
 * SHOAL_NATIVE=0 in the environment hands every call over. Built and installed into a
 * virtualenv by `python -m shoal.native` (scripts/bootstrap does it), with SHOAL_PYTHON set to
 * that virtualenv's interpreter.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef SHOAL_PYTHON
#error "build with -DSHOAL_PYTHON='\"/path/to/python\"' (python -m shoal.native does)"
#endif

#ifndef SHOAL_FRONT_SOURCE
#define SHOAL_FRONT_SOURCE "unknown"
#endif
/* What `python -m shoal.native --if-needed` looks for in an installed front: this source (its
 * sha256) and the interpreter it hands over to. */
__attribute__((used)) static const char FRONT_ID[] = "shoal-native-front source=" SHOAL_FRONT_SOURCE " python=" SHOAL_PYTHON ";";

enum { EXIT_OK = 0, EXIT_REFUSED = 3, EXIT_UNAVAILABLE = 4, EXIT_BUG = 70 };
enum { TIMEOUT_S = 30 };            /* wire.HttpApi's timeout */
enum { MAX_ANSWER = 16 << 20 };     /* an answer larger than this is not a SubmitJob answer */

static int g_argc;
static char **g_argv;

/* ---- handing over to the Python CLI ------------------------------------------------------- */

static void python(void) __attribute__((noreturn));
static void python(void)
{
    char **av = calloc((size_t)g_argc + 4, sizeof *av);
    if (av == NULL) {
        fputs("shoal: out of memory\n", stderr);
        exit(EXIT_BUG);
    }
    signal(SIGPIPE, SIG_DFL); /* as this program found it (Python sets its own) */
    av[0] = SHOAL_PYTHON;
    /* What pip's console script runs. -c, not -m shoal.cli: runpy's imports cost a start ~4 ms.
     * -P: sys.path gets no current directory, as for the console script. */
    av[1] = "-P";
    av[2] = "-c";
    av[3] = "import sys; from shoal.cli.main import main; sys.exit(main())";
    for (int i = 1; i < g_argc; i++)
        av[i + 3] = g_argv[i];
    execv(SHOAL_PYTHON, av);
    fprintf(stderr, "shoal: cannot run %s: %s\n", SHOAL_PYTHON, strerror(errno));
    exit(EXIT_BUG);
}

/* ---- a growing buffer ---------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t n, cap;
} buf;

static void grow(buf *b, size_t more)
{
    if (b->n + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        fputs("shoal: out of memory\n", stderr);
        exit(EXIT_BUG);
    }
    b->p = p;
    b->cap = cap;
}

static void put(buf *b, const char *s, size_t n)
{
    grow(b, n);
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

static void putf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        python();
    grow(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
}

/* A JSON string as json.dumps writes it: quotes, backslashes and control characters escaped,
 * everything else as it is (the request is ASCII; an answer's text is UTF-8). */
static void put_json(buf *b, const char *s)
{
    puts_(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '"': puts_(b, "\\\""); break;
        case '\\': puts_(b, "\\\\"); break;
        case '\n': puts_(b, "\\n"); break;
        case '\r': puts_(b, "\\r"); break;
        case '\t': puts_(b, "\\t"); break;
        case '\b': puts_(b, "\\b"); break;
        case '\f': puts_(b, "\\f"); break;
        default:
            if (c < 0x20)
                putf(b, "\\u%04x", c);
            else
                put(b, (const char *)&c, 1);
        }
    }
    puts_(b, "\"");
}

/* ---- the command line ---------------------------------------------------------------------- */

typedef struct {
    const char *name, *value;
} pair;

typedef struct {
    const char *queue, *name, *definition, *image, *runtime, *addr, *token;
    int token_given, json;
    double vcpus;
    int has_vcpus;
    long long memory, timeout, retry;
    int has_memory, has_timeout, has_retry;
    pair *env, *params;
    int n_env, n_params;
    pair *depends_on; /* (job id or "", dependency type or "") */
    int n_depends_on;
    long long array_size, array_parallelism;
    int has_array_size, has_array_parallelism;
    char **command;
    int n_command;
} submit_args;

static int is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 0;
    return 1;
}

static int all_digits(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* values.positive_int on plain digits; anything else is argparse's to judge. */
static long long positive_int(const char *s)
{
    if (!all_digits(s, 15))
        python();
    long long v = strtoll(s, NULL, 10);
    if (v <= 0)
        python();
    return v;
}

/* values.positive_float on DIGITS[.DIGITS]. */
static double positive_float(const char *s)
{
    const char *dot = strchr(s, '.');
    size_t whole = dot ? (size_t)(dot - s) : strlen(s);
    if (whole == 0 || whole > 15 || strlen(s) > 32)
        python();
    for (size_t i = 0; i < whole; i++)
        if (s[i] < '0' || s[i] > '9')
            python();
    if (dot && !all_digits(dot + 1, 16))
        python();
    double v = strtod(s, NULL);
    if (!(v > 0))
        python();
    return v;
}

/* values.key_value: NAME=VALUE with a name. */
static pair key_value(const char *s)
{
    const char *eq = strchr(s, '=');
    if (eq == NULL || eq == s)
        python();
    char *name = strndup(s, (size_t)(eq - s));
    if (name == NULL)
        python();
    return (pair){name, eq + 1};
}

static char *strip(const char *s, size_t n);

/* jobs.dependency_json: ID, ID:TYPE (a trailing type name, any case), or SEQUENTIAL alone. */
static pair dependency(const char *text)
{
    static const char *const TYPES[] = {"N_TO_N", "SEQUENTIAL", "AFTER_ANY", "AFTER_NOT_OK"};
    char *s = strip(text, strlen(text));
    if (s[0] == '\0')
        python(); /* "expected JOB_ID[...], got an empty value" */
    if (strcasecmp(s, "SEQUENTIAL") == 0 || strcasecmp(s, ":SEQUENTIAL") == 0)
        return (pair){"", "SEQUENTIAL"};
    size_t n = strlen(s);
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++) {
        size_t t = strlen(TYPES[i]);
        if (n > t && s[n - t - 1] == ':' && strcasecmp(s + n - t, TYPES[i]) == 0) {
            if (n == t + 1)
                python(); /* "missing job id" */
            s[n - t - 1] = '\0';
            return (pair){s, TYPES[i]};
        }
    }
    return (pair){s, ""};
}

/* shoal/cli/main.py's _global_options: --ca and --token anywhere before `--`. */
static char **global_options(submit_args *a, int *n_rest)
{
    char **rest = calloc((size_t)g_argc + 1, sizeof *rest);
    if (rest == NULL)
        python();
    int n = 0;
    for (int i = 1; i < g_argc; i++) {
        const char *arg = g_argv[i];
        if (strcmp(arg, "--") == 0) {
            for (; i < g_argc; i++)
                rest[n++] = g_argv[i];
            break;
        }
        if (strcmp(arg, "--ca") == 0 || strncmp(arg, "--ca=", 5) == 0)
            python(); /* TLS: the Python CLI's */
        if (strcmp(arg, "--token") == 0) {
            if (i + 1 >= g_argc)
                python();
            a->token = g_argv[++i];
            a->token_given = 1;
        } else if (strncmp(arg, "--token=", 8) == 0) {
            a->token = arg + 8;
            a->token_given = 1;
        } else {
            rest[n++] = g_argv[i];
        }
    }
    *n_rest = n;
    return rest;
}

enum opt_kind { O_QUEUE, O_NAME, O_DEFINITION, O_VCPUS, O_MEMORY, O_IMAGE, O_RUNTIME, O_ENV, O_PARAM,
                O_RETRY, O_TIMEOUT, O_ADDR, O_OUTPUT, O_DEPENDS_ON, O_ARRAY_SIZE, O_ARRAY_PARALLELISM };

static const struct {
    const char *flag;
    enum opt_kind kind;
} OPTIONS[] = {
    {"-q", O_QUEUE}, {"--queue", O_QUEUE}, {"-n", O_NAME}, {"--name", O_NAME},
    {"-d", O_DEFINITION}, {"--definition", O_DEFINITION}, {"--vcpus", O_VCPUS},
    {"--memory", O_MEMORY}, {"--image", O_IMAGE}, {"--runtime", O_RUNTIME},
    {"-e", O_ENV}, {"--env", O_ENV}, {"-p", O_PARAM}, {"--parameter", O_PARAM},
    {"--retry-attempts", O_RETRY}, {"--timeout", O_TIMEOUT}, {"--addr", O_ADDR},
    {"-o", O_OUTPUT}, {"--output", O_OUTPUT}, {"--depends-on", O_DEPENDS_ON},
    {"--array-size", O_ARRAY_SIZE}, {"--array-parallelism", O_ARRAY_PARALLELISM},
};

/* The submit command line, as shoal/cli/quick.py parses it; anything else is handed over. */
static void parse_submit(submit_args *a)
{
    int n_rest;
    char **rest = global_options(a, &n_rest);
    if (n_rest < 1 || strcmp(rest[0], "submit") != 0)
        python();
    a->queue = a->name = a->definition = a->image = a->runtime = a->addr = "";
    a->env = calloc((size_t)n_rest + 1, sizeof *a->env);
    a->params = calloc((size_t)n_rest + 1, sizeof *a->params);
    a->depends_on = calloc((size_t)n_rest + 1, sizeof *a->depends_on);
    if (a->env == NULL || a->params == NULL || a->depends_on == NULL)
        python();
    for (int i = 1; i < n_rest; i++) {
        const char *arg = rest[i];
        if (strcmp(arg, "--") == 0) {
            a->command = rest + i + 1;
            a->n_command = n_rest - i - 1;
            break;
        }
        if (arg[0] != '-' || strcmp(arg, "-") == 0)
            python(); /* a positional: argparse explains that the command goes after -- */
        const char *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        int kind = -1;
        for (size_t k = 0; k < sizeof OPTIONS / sizeof OPTIONS[0]; k++)
            if (strlen(OPTIONS[k].flag) == name_len && strncmp(OPTIONS[k].flag, arg, name_len) == 0)
                kind = (int)OPTIONS[k].kind;
        if (kind < 0 || (eq && strncmp(arg, "--", 2) != 0))
            python(); /* --wait, --from-file, --gpus, multi-node, -h, abbreviations, -q=X ... */
        const char *value;
        if (eq) {
            value = eq + 1;
        } else {
            if (i + 1 >= n_rest)
                python();
            value = rest[++i];
            if (value[0] == '-' && strcmp(value, "-") != 0)
                python();
        }
        switch ((enum opt_kind)kind) {
        case O_QUEUE: a->queue = value; break;
        case O_NAME: a->name = value; break;
        case O_DEFINITION: a->definition = value; break;
        case O_IMAGE: a->image = value; break;
        case O_ADDR: a->addr = value; break;
        case O_VCPUS: a->vcpus = positive_float(value); a->has_vcpus = 1; break;
        case O_MEMORY: a->memory = positive_int(value); a->has_memory = 1; break;
        case O_TIMEOUT: a->timeout = positive_int(value); a->has_timeout = 1; break;
        case O_RETRY:
            /* quick.py takes any int; submit_request wants 1..10 and explains otherwise. */
            if (!all_digits(value, 2))
                python();
            a->retry = strtoll(value, NULL, 10);
            if (a->retry < 1 || a->retry > 10)
                python();
            a->has_retry = 1;
            break;
        case O_RUNTIME:
            if (strcmp(value, "") && strcmp(value, "process") && strcmp(value, "podman") && strcmp(value, "docker"))
                python();
            a->runtime = value;
            break;
        case O_OUTPUT:
            if (strcasecmp(value, "json") == 0)
                a->json = 1;
            else if (strcasecmp(value, "table") == 0)
                a->json = 0;
            else
                python();
            break;
        case O_ENV: a->env[a->n_env++] = key_value(value); break;
        case O_DEPENDS_ON: a->depends_on[a->n_depends_on++] = dependency(value); break;
        case O_ARRAY_SIZE:
            /* quick.py takes any int; submit_request wants >= 2 and explains otherwise. */
            a->array_size = positive_int(value);
            if (a->array_size < 2)
                python();
            a->has_array_size = 1;
            break;
        case O_ARRAY_PARALLELISM:
            a->array_parallelism = positive_int(value);
            a->has_array_parallelism = 1;
            break;
        case O_PARAM: a->params[a->n_params++] = key_value(value); break;
        }
    }
    if (a->n_command == 0 && !a->definition[0] && !a->image[0])
        python(); /* "nothing to run": the Python CLI's message */
    if (a->has_array_parallelism && !a->has_array_size)
        python(); /* "--array-parallelism needs --array-size" */
}

/* jobs.derive_job_name: the command's basename (else the definition's name) made a valid name. */
static void derive_job_name(const submit_args *a, buf *out)
{
    char *base;
    if (a->n_command > 0) {
        char *head = strdup(a->command[0]);
        if (head == NULL)
            python();
        size_t n = strlen(head);
        while (n > 0 && head[n - 1] == '/')
            head[--n] = '\0';
        char *slash = strrchr(head, '/');
        base = slash ? slash + 1 : head;
        if (!*base)
            base = a->command[0];
    } else {
        base = strndup(a->definition, strcspn(a->definition, ":"));
        if (base == NULL)
            python();
    }
    buf name = {0};
    int in_run = 0;
    for (const char *c = base; *c; c++) {
        int ok = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' ||
                 *c == '-';
        if (ok) {
            put(&name, c, 1);
            in_run = 0;
        } else if (!in_run) {
            put(&name, "-", 1);
            in_run = 1;
        }
    }
    const char *s = name.p ? name.p : "";
    while (*s == '-' || *s == '_')
        s++;
    size_t n = strlen(s);
    if (n > 128)
        n = 128;
    while (n > 0 && s[n - 1] == '-')
        n--;
    if (n == 0)
        puts_(out, "job");
    else
        put(out, s, n);
}

/* jobs.submit_request's JSON. */
static void request_json(const submit_args *a, buf *b)
{
    puts_(b, "{\"jobName\":");
    if (a->name[0]) {
        put_json(b, a->name);
    } else {
        buf derived = {0};
        derive_job_name(a, &derived);
        put_json(b, derived.p);
    }
    puts_(b, ",\"containerOverrides\":{");
    const char *sep = "";
    if (a->n_command > 0) {
        puts_(b, "\"command\":[");
        for (int i = 0; i < a->n_command; i++) {
            if (i)
                puts_(b, ",");
            put_json(b, a->command[i]);
        }
        puts_(b, "]");
        sep = ",";
    }
    if (a->n_env > 0) {
        puts_(b, sep);
        puts_(b, "\"environment\":[");
        for (int i = 0; i < a->n_env; i++) {
            puts_(b, i ? ",{\"name\":" : "{\"name\":");
            put_json(b, a->env[i].name);
            puts_(b, ",\"value\":");
            put_json(b, a->env[i].value);
            puts_(b, "}");
        }
        puts_(b, "]");
        sep = ",";
    }
    if (a->has_vcpus) {
        putf(b, "%s\"vcpus\":%.17g", sep, a->vcpus);
        sep = ",";
    }
    if (a->has_memory) {
        putf(b, "%s\"memoryMib\":%lld", sep, a->memory);
        sep = ",";
    }
    if (a->image[0]) {
        putf(b, "%s\"image\":", sep);
        put_json(b, a->image);
        sep = ",";
    }
    if (a->runtime[0]) {
        putf(b, "%s\"runtime\":", sep);
        put_json(b, a->runtime);
    }
    puts_(b, "}");
    if (a->queue[0]) {
        puts_(b, ",\"jobQueue\":");
        put_json(b, a->queue);
    }
    if (a->definition[0]) {
        puts_(b, ",\"jobDefinition\":");
        put_json(b, a->definition);
    }
    if (a->n_depends_on > 0) {
        puts_(b, ",\"dependsOn\":[");
        for (int i = 0; i < a->n_depends_on; i++) {
            puts_(b, i ? ",{" : "{");
            if (a->depends_on[i].name[0]) {
                puts_(b, "\"jobId\":");
                put_json(b, a->depends_on[i].name);
            }
            if (a->depends_on[i].value[0])
                putf(b, "%s\"type\":\"DEPENDENCY_TYPE_%s\"", a->depends_on[i].name[0] ? "," : "", a->depends_on[i].value);
            puts_(b, "}");
        }
        puts_(b, "]");
    }
    if (a->has_array_size) {
        putf(b, ",\"arrayProperties\":{\"size\":%lld", a->array_size);
        if (a->has_array_parallelism)
            putf(b, ",\"parallelism\":%lld", a->array_parallelism);
        puts_(b, "}");
    }
    if (a->has_retry)
        putf(b, ",\"retryStrategy\":{\"attempts\":%lld}", a->retry);
    if (a->has_timeout)
        putf(b, ",\"timeout\":{\"attemptDurationSeconds\":%lld}", a->timeout);
    if (a->n_params > 0) {
        /* dict(args.parameter): a repeated name keeps its first place and its last value. */
        puts_(b, ",\"parameters\":{");
        int written = 0;
        for (int i = 0; i < a->n_params; i++) {
            int seen = 0;
            for (int j = 0; j < i; j++)
                if (strcmp(a->params[j].name, a->params[i].name) == 0)
                    seen = 1;
            if (seen)
                continue;
            const char *value = a->params[i].value;
            for (int j = i + 1; j < a->n_params; j++)
                if (strcmp(a->params[j].name, a->params[i].name) == 0)
                    value = a->params[j].value;
            if (written++)
                puts_(b, ",");
            put_json(b, a->params[i].name);
            puts_(b, ":");
            put_json(b, value);
        }
        puts_(b, "}");
    }
    puts_(b, "}");
}

/* ---- the token (shoal/tls.py resolve_token) ---------------------------------------------------- */

static int py_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f); }

static char *strip(const char *s, size_t n)
{
    while (n > 0 && py_space((unsigned char)*s))
        s++, n--;
    while (n > 0 && py_space((unsigned char)s[n - 1]))
        n--;
    char *out = strndup(s, n);
    if (out == NULL)
        python();
    return out;
}

static char *resolve_token(const submit_args *a)
{
    const char *env = a->token_given ? a->token : getenv("SHOAL_TOKEN");
    if (env != NULL && env[0])
        return strip(env, strlen(env));
    const char *path = getenv("SHOAL_TOKEN_FILE");
    if (path == NULL || !path[0])
        return strip("", 0);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        python(); /* the Python CLI words the error */
    buf text = {0};
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        put(&text, chunk, got);
    int failed = ferror(f);
    fclose(f);
    if (failed)
        python();
    const char *s = text.p ? text.p : "";
    if (strlen(s) != text.n || !is_ascii(s))
        python();
    /* str.splitlines()'s first line (ASCII line ends: \n \r \v \f \x1c \x1d \x1e). */
    size_t line = strcspn(s, "\n\r\v\f\x1c\x1d\x1e");
    return strip(s, line);
}

/* ---- addresses (transport.addresses, wire.split_url) ------------------------------------------ */

typedef struct {
    char *url; /* as given, without trailing slashes: the error messages name it */
    char *host, *port, *prefix;
} edge;

/* The http:// entries of the address list; hands over if there are none or any other kind. */
static edge *edges_of(const char *text, int *count)
{
    size_t len = strlen(text);
    edge *edges = calloc(len / 2 + 2, sizeof *edges);
    if (edges == NULL)
        python();
    int n = 0;
    const char *p = text;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t elen = end ? (size_t)(end - p) : strlen(p);
        char *entry = strip(p, elen);
        if (entry[0] && strstr(entry, "://") == NULL) {
            /* a gRPC HOST:PORT: used only if no edge answers, and then by the Python CLI */
        } else if (entry[0]) {
            if (strncmp(entry, "http://", 7) != 0)
                python(); /* https (TLS), or something the Python CLI refuses */
            size_t el = strlen(entry);
            while (el > 0 && entry[el - 1] == '/')
                entry[--el] = '\0';
            int dup = 0;
            for (int i = 0; i < n; i++)
                if (strcmp(edges[i].url, entry) == 0)
                    dup = 1;
            if (!dup) {
                edge *e = &edges[n++];
                e->url = entry;
                char *rest = entry + 7;
                char *slash = strchr(rest, '/');
                char *hostport = strndup(rest, slash ? (size_t)(slash - rest) : strlen(rest));
                if (hostport == NULL)
                    python();
                e->prefix = slash ? slash : "";
                const char *port_text;
                if (hostport[0] == '[') {
                    char *close = strchr(hostport, ']');
                    if (close == NULL)
                        python();
                    *close = '\0';
                    e->host = hostport + 1;
                    port_text = close[1] == ':' ? close + 2 : close + 1;
                } else {
                    char *colon = strrchr(hostport, ':');
                    e->host = hostport;
                    port_text = "";
                    if (colon) {
                        *colon = '\0';
                        port_text = colon + 1;
                    }
                }
                if (!e->host[0] || strchr(e->host, '@') || strchr(e->host, '?') || strchr(e->host, '#'))
                    python();
                if (!port_text[0]) {
                    port_text = "80";
                } else if (!all_digits(port_text, 9) || atoi(port_text) < 1 || atoi(port_text) > 65535) {
                    python();
                }
                char port[8];
                snprintf(port, sizeof port, "%d", atoi(port_text)); /* "0080" is 80, as int() reads it */
                e->port = strdup(port);
                if (e->port == NULL)
                    python();
            }
        }
        if (end == NULL)
            break;
        p = end + 1;
    }
    if (n == 0)
        python();
    *count = n;
    return edges;
}

/* ---- one exchange (wire._Connection) ---------------------------------------------------------- */

enum outcome { SENT_ANSWERED, NOT_CONNECTED, NOT_SHOAL, BROKEN };

typedef struct {
    int status;
    char *leader; /* the shoal-leader header, or NULL */
    buf body;
    char reason[160]; /* BROKEN: what happened, in wire._os_reason's words */
} answer;

static void os_reason(char *out, size_t size, int err)
{
    if (err == ECONNREFUSED) {
        snprintf(out, size, "connection refused");
    } else if (err == EAGAIN || err == EWOULDBLOCK || err == ETIMEDOUT) {
        snprintf(out, size, "timed out");
    } else {
        snprintf(out, size, "%s", strerror(err));
        for (char *c = out; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
    }
}

static int connect_one(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0)
        return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            close(fd);
            return -1;
        }
        struct pollfd pfd = {fd, POLLOUT, 0};
        int ready;
        do
            ready = poll(&pfd, 1, TIMEOUT_S * 1000);
        while (ready < 0 && errno == EINTR);
        int soerr = 0;
        socklen_t slen = sizeof soerr;
        if (ready <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) != 0 || soerr != 0) {
            close(fd);
            return -1;
        }
    }
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    struct timeval tv = {TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int dial(const edge *e)
{
    struct addrinfo hints = {0}, *found = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(e->host, e->port, &hints, &found) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *ai = found; ai != NULL && fd < 0; ai = ai->ai_next)
        fd = connect_one(ai);
    freeaddrinfo(found);
    return fd;
}

/* recv into b; 0 at the end, -1 (reason set) on an error */
static ssize_t take(int fd, buf *b, answer *ans)
{
    grow(b, 65536);
    ssize_t got;
    do
        got = recv(fd, b->p + b->n, 65536, 0);
    while (got < 0 && errno == EINTR);
    if (got < 0) {
        os_reason(ans->reason, sizeof ans->reason, errno);
        return -1;
    }
    b->n += (size_t)got;
    b->p[b->n] = '\0';
    if (b->n > MAX_ANSWER) {
        snprintf(ans->reason, sizeof ans->reason, "answer too large");
        return -1;
    }
    return got;
}

static const char *header(const char *head, const char *name)
{
    size_t n = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line != NULL; line = strstr(line, "\r\n")) {
        line += 2;
        const char *colon = strchr(line, ':');
        const char *eol = strstr(line, "\r\n");
        if (colon == NULL || (eol != NULL && colon > eol))
            continue;
        const char *s = line, *t = colon;
        while (s < t && (*s == ' ' || *s == '\t'))
            s++;
        while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - s) == n && strncasecmp(s, name, n) == 0) {
            const char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            return v;
        }
    }
    return NULL;
}

static char *header_value(const char *head, const char *name)
{
    const char *v = header(head, name);
    if (v == NULL)
        return NULL;
    return strip(v, strcspn(v, "\r\n"));
}

/* More of the answer into b; 0 when there is none, with BROKEN's reason: `at_end` if the server
 * closed, take's if the connection failed. */
static int more(int fd, buf *b, answer *ans, const char *at_end)
{
    ssize_t got = take(fd, b, ans);
    if (got == 0)
        snprintf(ans->reason, sizeof ans->reason, "%s", at_end);
    return got > 0;
}

/* A chunked body from raw (what came with the head) and the connection. */
static enum outcome chunked_body(int fd, buf *raw, answer *ans)
{
    const char *cut = "the answer stopped in the middle";
    size_t pos = 0;
    for (;;) {
        char *eol;
        while ((eol = strstr(raw->p + pos, "\r\n")) == NULL)
            if (!more(fd, raw, ans, cut))
                return BROKEN;
        size_t size = strtoul(raw->p + pos, NULL, 16);
        size_t data = (size_t)(eol - raw->p) + 2;
        if (size == 0)
            return SENT_ANSWERED;
        if (size > MAX_ANSWER) {
            snprintf(ans->reason, sizeof ans->reason, "answer too large");
            return BROKEN;
        }
        while (raw->n < data + size + 2)
            if (!more(fd, raw, ans, cut))
                return BROKEN;
        put(&ans->body, raw->p + data, size);
        pos = data + size + 2;
    }
}

/* A body of Content-Length bytes (length_text), or, without one, until the server closes. */
static enum outcome sized_body(int fd, buf *raw, const char *length_text, answer *ans)
{
    if (length_text == NULL) {
        ssize_t got;
        while ((got = take(fd, raw, ans)) > 0)
            ;
        if (got < 0)
            return BROKEN;
    } else {
        if (!all_digits(length_text, 9))
            return NOT_SHOAL;
        size_t want = (size_t)strtoll(length_text, NULL, 10);
        while (raw->n < want)
            if (!more(fd, raw, ans, "truncated answer"))
                return BROKEN;
    }
    put(&ans->body, raw->p ? raw->p : "", raw->n);
    return SENT_ANSWERED;
}

/* The request on a connected socket, and its answer (the head checked as wire.read_head does). */
static enum outcome converse(int fd, const edge *e, const char *token, const buf *body, answer *ans)
{
    buf req = {0};
    putf(&req,
         "POST %s/shoal.v1.Batch/SubmitJob HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: application/json\r\n"
         "Content-Length: %zu\r\nConnection: close\r\nUser-Agent: shoal-native\r\n",
         e->prefix, e->host, e->port, body->n);
    if (token[0])
        putf(&req, "Authorization: Bearer %s\r\n", token);
    puts_(&req, "\r\n");
    put(&req, body->p, body->n);
    for (size_t off = 0; off < req.n;) {
        ssize_t sent = send(fd, req.p + off, req.n - off, MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent < 0) {
            os_reason(ans->reason, sizeof ans->reason, errno);
            return BROKEN;
        }
        off += (size_t)sent;
    }
    /* the head */
    buf in = {0};
    char *end_of_head;
    while ((end_of_head = in.p ? strstr(in.p, "\r\n\r\n") : NULL) == NULL)
        if (!more(fd, &in, ans, in.n ? "truncated answer" : "connection closed before an answer"))
            return BROKEN;
    size_t head_len = (size_t)(end_of_head - in.p);
    char *head = strndup(in.p, head_len);
    if (head == NULL)
        python();
    /* "HTTP/x.y NNN ..." */
    size_t first_line = strcspn(head, "\r\n");
    char *sp = memchr(head, ' ', first_line);
    if (strncmp(head, "HTTP/", 5) != 0 || sp == NULL || !(sp[1] >= '0' && sp[1] <= '9'))
        return NOT_SHOAL;
    char *digits_end = sp + 1;
    while (*digits_end >= '0' && *digits_end <= '9')
        digits_end++;
    if ((*digits_end != ' ' && *digits_end != '\r' && *digits_end != '\0') || digits_end - sp - 1 > 9)
        return NOT_SHOAL;
    ans->status = atoi(sp + 1);
    if (header(head, "shoal-api") == NULL)
        return NOT_SHOAL; /* an older controller or another program: nothing was applied */
    ans->leader = header_value(head, "shoal-leader");
    /* the body, by chunks, Content-Length, or until the server closes */
    buf raw = {0};
    put(&raw, end_of_head + 4, in.n - head_len - 4);
    char *encoding = header_value(head, "transfer-encoding");
    if (encoding != NULL && strcasestr(encoding, "chunked") != NULL)
        return chunked_body(fd, &raw, ans);
    return sized_body(fd, &raw, header_value(head, "content-length"), ans);
}

static enum outcome exchange(const edge *e, const char *token, const buf *body, answer *ans)
{
    int fd = dial(e);
    if (fd < 0)
        return NOT_CONNECTED;
    enum outcome outcome = converse(fd, e, token, body, ans);
    close(fd);
    return outcome;
}

/* ---- reading the answer's JSON ------------------------------------------------------------------ */

/* A small JSON reader: the string members of the top-level object (decoded to UTF-8); other values
 * are checked and skipped. */
typedef struct {
    const char *p, *end;
    int depth;
} reader;

static void ws(reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

static void put_utf8(buf *b, unsigned cp)
{
    char s[4];
    if (cp < 0x80) {
        s[0] = (char)cp;
        put(b, s, 1);
    } else if (cp < 0x800) {
        s[0] = (char)(0xc0 | (cp >> 6));
        s[1] = (char)(0x80 | (cp & 0x3f));
        put(b, s, 2);
    } else if (cp < 0x10000) {
        s[0] = (char)(0xe0 | (cp >> 12));
        s[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        s[2] = (char)(0x80 | (cp & 0x3f));
        put(b, s, 3);
    } else {
        s[0] = (char)(0xf0 | (cp >> 18));
        s[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        s[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        s[3] = (char)(0x80 | (cp & 0x3f));
        put(b, s, 4);
    }
}

/* A string at r->p (the opening quote); into out if not NULL. 0 if malformed. A lone surrogate
 * is written as Python writes it to stderr (backslashreplace): \udXXX. */
static int string(reader *r, buf *out)
{
    r->p++;
    buf scratch = {0};
    buf *b = out ? out : &scratch;
    while (r->p < r->end && *r->p != '"') {
        unsigned char c = (unsigned char)*r->p;
        if (c < 0x20)
            return 0;
        if (c != '\\') {
            put(b, r->p, 1);
            r->p++;
            continue;
        }
        if (r->p + 1 >= r->end)
            return 0;
        char e = r->p[1];
        r->p += 2;
        switch (e) {
        case '"': put(b, "\"", 1); break;
        case '\\': put(b, "\\", 1); break;
        case '/': put(b, "/", 1); break;
        case 'b': put(b, "\b", 1); break;
        case 'f': put(b, "\f", 1); break;
        case 'n': put(b, "\n", 1); break;
        case 'r': put(b, "\r", 1); break;
        case 't': put(b, "\t", 1); break;
        case 'u': {
            unsigned cp, low;
            if (r->end - r->p < 4 || !hex4(r->p, &cp))
                return 0;
            r->p += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && r->end - r->p >= 6 && r->p[0] == '\\' && r->p[1] == 'u' &&
                hex4(r->p + 2, &low) && low >= 0xdc00 && low < 0xe000) {
                r->p += 6;
                put_utf8(b, 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00));
            } else if (cp >= 0xd800 && cp < 0xe000) {
                putf(b, "\\u%04x", cp);
            } else {
                put_utf8(b, cp);
            }
            break;
        }
        default:
            return 0;
        }
    }
    free(scratch.p);
    if (r->p >= r->end)
        return 0;
    r->p++;
    return 1;
}

static int value(reader *r);

static int literal(reader *r, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(r->end - r->p) < n || strncmp(r->p, word, n) != 0)
        return 0;
    r->p += n;
    return 1;
}

static int number(reader *r)
{
    const char *start = r->p;
    if (r->p < r->end && *r->p == '-')
        r->p++;
    while (r->p < r->end && ((*r->p >= '0' && *r->p <= '9') || *r->p == '.' || *r->p == 'e' || *r->p == 'E' ||
                             *r->p == '+' || *r->p == '-'))
        r->p++;
    return r->p > start && (r->p[-1] >= '0' && r->p[-1] <= '9');
}

static int container(reader *r, char open, char close)
{
    if (++r->depth > 64)
        return 0;
    r->p++;
    ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        r->depth--;
        return 1;
    }
    for (;;) {
        ws(r);
        if (open == '{') {
            if (r->p >= r->end || *r->p != '"' || !string(r, NULL))
                return 0;
            ws(r);
            if (r->p >= r->end || *r->p != ':')
                return 0;
            r->p++;
        }
        if (!value(r))
            return 0;
        ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        if (r->p < r->end && *r->p == close) {
            r->p++;
            r->depth--;
            return 1;
        }
        return 0;
    }
}

static int value(reader *r)
{
    ws(r);
    if (r->p >= r->end)
        return 0;
    switch (*r->p) {
    case '{': return container(r, '{', '}');
    case '[': return container(r, '[', ']');
    case '"': return string(r, NULL);
    case 't': return literal(r, "true");
    case 'f': return literal(r, "false");
    case 'n': return literal(r, "null");
    default: return number(r);
    }
}

/* The top-level object's string members named in `names` (NULL where absent or not a string).
 * 0 if the text is not one JSON object. */
static int members(const buf *text, const char *const *names, char **found, int count)
{
    for (int i = 0; i < count; i++)
        found[i] = NULL;
    reader r = {text->p ? text->p : "", (text->p ? text->p : "") + text->n, 1};
    ws(&r);
    if (r.p >= r.end || *r.p != '{')
        return 0;
    r.p++;
    ws(&r);
    if (r.p < r.end && *r.p == '}') {
        r.p++;
    } else {
        for (;;) {
            ws(&r);
            buf key = {0};
            if (r.p >= r.end || *r.p != '"' || !string(&r, &key))
                return 0;
            ws(&r);
            if (r.p >= r.end || *r.p != ':')
                return 0;
            r.p++;
            ws(&r);
            int wanted = -1;
            for (int i = 0; i < count; i++)
                if (key.p && strlen(key.p) == key.n && strcmp(key.p, names[i]) == 0)
                    wanted = i;
            if (wanted >= 0 && r.p < r.end && *r.p == '"') {
                buf v = {0};
                if (!string(&r, &v))
                    return 0;
                free(found[wanted]);
                found[wanted] = v.p ? v.p : strdup("");
            } else {
                if (wanted >= 0) {
                    free(found[wanted]);
                    found[wanted] = NULL;
                }
                if (!value(&r))
                    return 0;
            }
            free(key.p);
            ws(&r);
            if (r.p < r.end && *r.p == ',') {
                r.p++;
                continue;
            }
            if (r.p < r.end && *r.p == '}') {
                r.p++;
                break;
            }
            return 0;
        }
    }
    ws(&r);
    return r.p == r.end;
}

/* ---- output -------------------------------------------------------------------------------------- */

/* main._one_line: runs of whitespace (str.split's, ASCII and Unicode) become one space. */
static void one_line(buf *out, const char *s)
{
    int pending = 0, any = 0;
    while (*s) {
        const unsigned char *u = (const unsigned char *)s;
        size_t n = 0;
        if (py_space(u[0]))
            n = 1;
        else if (u[0] == 0xc2 && (u[1] == 0x85 || u[1] == 0xa0))
            n = 2;
        else if (u[0] == 0xe1 && u[1] == 0x9a && u[2] == 0x80)
            n = 3; /* U+1680 */
        else if (u[0] == 0xe2 && u[1] == 0x80 && ((u[2] >= 0x80 && u[2] <= 0x8a) || u[2] == 0xa8 || u[2] == 0xa9 || u[2] == 0xaf))
            n = 3; /* U+2000..200A, 2028, 2029, 202F */
        else if (u[0] == 0xe2 && u[1] == 0x81 && u[2] == 0x9f)
            n = 3; /* U+205F */
        else if (u[0] == 0xe3 && u[1] == 0x80 && u[2] == 0x80)
            n = 3; /* U+3000 */
        if (n) {
            pending = any;
            s += n;
            continue;
        }
        if (pending)
            put(out, " ", 1);
        pending = 0;
        any = 1;
        put(out, s, 1);
        s++;
    }
}

static void emit(FILE *f, const buf *b)
{
    if ((fwrite(b->p ? b->p : "", 1, b->n, f) != b->n || fflush(f) != 0) && f == stdout)
        exit(errno == EPIPE ? 141 : EXIT_BUG); /* 141: the reader went away, as main._guarded says */
}

static int fail(int code, const char *message)
{
    buf line = {0};
    puts_(&line, "shoal: ");
    one_line(&line, message);
    puts_(&line, "\n");
    emit(stderr, &line);
    return code;
}

static int refused(const answer *ans)
{
    static const char *const names[] = {"code", "message", "leader"};
    char *got[3];
    if (!members(&ans->body, names, got, 3) || got[0] == NULL) {
        /* not the edge's error form (wire._refusal): the status and the start of the body */
        buf msg = {0};
        putf(&msg, "HTTP %d from the controller: ", ans->status);
        put(&msg, ans->body.p ? ans->body.p : "", ans->body.n < 200 ? ans->body.n : 200);
        return fail(EXIT_REFUSED, msg.p);
    }
    for (char *c = got[0]; *c; c++)
        if (*c >= 'a' && *c <= 'z')
            *c = (char)(*c - 'a' + 'A');
    const char *leader = got[2] && got[2][0] ? got[2] : ans->leader;
    if (strcmp(got[0], "UNAVAILABLE") == 0 && leader != NULL && leader[0])
        python(); /* a follower named its leader: nothing was applied; the Python CLI goes there over gRPC */
    const char *details = got[1] && got[1][0] ? got[1] : got[0];
    static const char *const known[] = {"INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "FAILED_PRECONDITION",
                                        "ABORTED", "RESOURCE_EXHAUSTED", "UNAVAILABLE", "DEADLINE_EXCEEDED",
                                        "UNAUTHENTICATED", "PERMISSION_DENIED"};
    int is_known = 0;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(got[0], known[i]) == 0)
            is_known = 1;
    buf msg = {0};
    if (is_known)
        puts_(&msg, details);
    else
        putf(&msg, "%s: %s", got[0], details);
    int unavailable = strcmp(got[0], "UNAVAILABLE") == 0 || strcmp(got[0], "DEADLINE_EXCEEDED") == 0;
    return fail(unavailable ? EXIT_UNAVAILABLE : EXIT_REFUSED, msg.p);
}

static int submitted(const submit_args *a, const answer *ans)
{
    static const char *const names[] = {"jobId", "jobName"};
    char *got[2] = {NULL, NULL};
    int blank = 1; /* bytes.strip()'s whitespace */
    for (size_t i = 0; i < ans->body.n; i++)
        if (!strchr(" \t\n\r\v\f", ans->body.p[i]) || ans->body.p[i] == '\0')
            blank = 0;
    if (!blank && !members(&ans->body, names, got, 2))
        return fail(EXIT_BUG, "internal error: the controller's answer is not a JSON object (set SHOAL_DEBUG=1 for details)");
    buf line = {0};
    if (a->json) {
        puts_(&line, "{\n  \"jobId\": ");
        put_json(&line, got[0] ? got[0] : "");
        puts_(&line, ",\n  \"jobName\": ");
        put_json(&line, got[1] ? got[1] : "");
        puts_(&line, "\n}\n");
    } else {
        puts_(&line, got[0] ? got[0] : "");
        puts_(&line, "\n");
    }
    emit(stdout, &line);
    return EXIT_OK;
}

static void interrupted(int sig)
{
    (void)sig;
    _exit(130);
}

int main(int argc, char **argv)
{
    g_argc = argc;
    g_argv = argv;
    const char *native = getenv("SHOAL_NATIVE");
    if (argc < 2 || (native != NULL && strcmp(native, "0") == 0))
        python();
    for (int i = 1; i < argc; i++)
        if (!is_ascii(argv[i]))
            python();
    submit_args a = {0};
    parse_submit(&a);
    const char *addr = a.addr[0] ? a.addr : getenv("SHOAL_ADDR");
    if (addr == NULL || !addr[0] || !is_ascii(addr))
        python(); /* the default address is gRPC */
    const char *env_token = getenv("SHOAL_TOKEN");
    if ((a.token_given && !is_ascii(a.token)) || (env_token != NULL && !is_ascii(env_token)))
        python();
    int n_edges;
    edge *edges = edges_of(addr, &n_edges);
    char *token = resolve_token(&a);
    for (const char *c = token; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            python();
    buf body = {0};
    request_json(&a, &body);
    signal(SIGPIPE, SIG_IGN); /* a closed stdout is EPIPE and exit 141, as in the Python CLI */
    signal(SIGINT, interrupted); /* Ctrl-C: exit 130, as the Python CLI's KeyboardInterrupt */
    for (int i = 0; i < n_edges; i++) {
        answer ans = {0};
        switch (exchange(&edges[i], token, &body, &ans)) {
        case NOT_CONNECTED:
        case NOT_SHOAL:
            continue; /* nothing was applied there */
        case BROKEN: {
            buf msg = {0};
            putf(&msg, "lost the connection to %s (%s); the request may have been applied", edges[i].url, ans.reason);
            return fail(EXIT_UNAVAILABLE, msg.p);
        }
        case SENT_ANSWERED:
            return ans.status == 200 ? submitted(&a, &ans) : refused(&ans);
        }
    }
    python(); /* no address answered as a shoal edge: the Python CLI tries gRPC, or words the error */
}
