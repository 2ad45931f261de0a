/*
 * cdbhost.c: a TEST BED for pydbgauto's cdb driver. It is NOT cdb.exe.
 *
 * A small console over Microsoft's real debugger engine (dbgeng.dll from the NuGet package
 * Microsoft.Debugging.Platform.DbgEng), meant to run under Wine on Linux. It speaks the part of
 * cdb's command line and console protocol that pydbgauto's CdbDriver uses: the options it passes,
 * the engine's own output on stdout, the engine's prompt (IDebugControl::OutputPrompt), one command
 * per input line, break-in on Ctrl+C / Ctrl+Break (IDebugControl::SetInterrupt), q/qd, and -z dumps.
 * Every line of debugger and SOS text comes from the engine and its extensions; only "quit:" and the
 * error lines marked "cdbhost:" are this program's own. See README.md beside this file.
 *
 * Build: x86_64-w64-mingw32-gcc -O2 -I<pkg>/build/native/inc cdbhost.c -L<pkg>/build/native/lib/amd64
 *        -ldbgeng -lole32 -luuid -o cdbhost.exe
 */
#define INITGUID
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _Analysis_noreturn_
#define _Analysis_noreturn_ /* a SAL annotation of the package's header that mingw-w64 lacks */
#endif
#include <dbgeng.h>

#ifndef SYMOPT_LOAD_LINES
#define SYMOPT_LOAD_LINES 0x00000010
#endif
#ifndef STATUS_WX86_BREAKPOINT
#define STATUS_WX86_BREAKPOINT ((DWORD)0x4000001F)
#endif

#define LINE_MAX_CHARS 65536
/* Under Wine (not Windows) the runtime's start-up notification exception 0x04242420, handed back
 * not handled as the engine does by default, makes coreclr fault for good: mark it handled. */
#define WINE_CLR_NOTIFICATION_FILTER "sxe -h 04242420"
#define QD_HANDBACK_TRIES 8
#define QD_BREAK_IN_MS 200 /* how long the target runs after gn before the host breaks in again */

static IDebugClient5 *g_client;
static IDebugControl4 *g_control;
static IDebugSymbols3 *g_symbols;
static HANDLE g_stdout;
static CRITICAL_SECTION g_out_lock;
static volatile LONG g_busy;          /* 1 while the engine waits for an event or runs a command */
static volatile LONG g_pending_break; /* tick count of a Ctrl+C that came while idle, 0 if none */

/* -- options ------------------------------------------------------------------------------ */

typedef struct {
    int detach_on_quit;   /* -pd */
    int no_shell;         /* -noshell */
    int lines;            /* -lines */
    int new_console;      /* -2 */
    int no_inherit;       /* -noinh */
    int no_debug_heap;    /* -hd */
    int skip_initial;     /* -g */
    int skip_final;       /* -G */
    const char *init_file;   /* -cf */
    const char *symbols;     /* -y */
    const char *commands;    /* -c */
    const char *dump;        /* -z */
    const char *proc_name;   /* -pn */
    ULONG pid;               /* -p */
    int have_pid;
    char *command_line;      /* the target's command line when launching */
} Options;

static Options g_opt;

/* -- output -------------------------------------------------------------------------------- */

/* Writes text as cdb does through a pipe: lines end CRLF. */
static void write_out(const char *text)
{
    char buf[4096];
    size_t n = 0;
    DWORD written;
    EnterCriticalSection(&g_out_lock);
    for (; *text; ++text) {
        if (*text == '\n' && (n == 0 || buf[n - 1] != '\r'))
            buf[n++] = '\r';
        buf[n++] = *text;
        if (n >= sizeof(buf) - 2) {
            WriteFile(g_stdout, buf, (DWORD)n, &written, NULL);
            n = 0;
        }
    }
    if (n)
        WriteFile(g_stdout, buf, (DWORD)n, &written, NULL);
    LeaveCriticalSection(&g_out_lock);
}

static void say(const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    write_out(buf);
}

/* IDebugOutputCallbacks in C: one static object, no reference counting needed. */
static HRESULT STDMETHODCALLTYPE out_query_interface(IDebugOutputCallbacks *self, REFIID iid, PVOID *out)
{
    if (IsEqualIID(iid, &IID_IUnknown) || IsEqualIID(iid, &IID_IDebugOutputCallbacks)) {
        *out = self;
        return S_OK;
    }
    *out = NULL;
    return E_NOINTERFACE;
}

static ULONG STDMETHODCALLTYPE out_add_ref(IDebugOutputCallbacks *self)
{
    (void)self;
    return 1;
}

static ULONG STDMETHODCALLTYPE out_release(IDebugOutputCallbacks *self)
{
    (void)self;
    return 1;
}

static HRESULT STDMETHODCALLTYPE out_output(IDebugOutputCallbacks *self, ULONG mask, PCSTR text)
{
    (void)self;
    (void)mask;
    if (text)
        write_out(text);
    return S_OK;
}

static IDebugOutputCallbacksVtbl g_out_vtbl = {out_query_interface, out_add_ref, out_release, out_output};
static IDebugOutputCallbacks g_out_cb = {&g_out_vtbl};

/* -- break-in ------------------------------------------------------------------------------ */

static BOOL WINAPI on_console_ctrl(DWORD type)
{
    if (type != CTRL_C_EVENT && type != CTRL_BREAK_EVENT)
        return FALSE;
    if (g_control && InterlockedCompareExchange(&g_busy, 0, 0))
        g_control->lpVtbl->SetInterrupt(g_control, DEBUG_INTERRUPT_ACTIVE);
    else
        InterlockedExchange(&g_pending_break, (LONG)(GetTickCount() | 1));
    return TRUE; /* the host itself never dies of Ctrl+C, like cdb */
}

/* A Ctrl+C that came a moment before a 'g' was read still breaks that 'g' in. */
static void take_pending_break(void)
{
    LONG at = InterlockedExchange(&g_pending_break, 0);
    if (at && GetTickCount() - (DWORD)at < 2000)
        g_control->lpVtbl->SetInterrupt(g_control, DEBUG_INTERRUPT_ACTIVE);
}

/* -- the engine ---------------------------------------------------------------------------- */

static ULONG execution_status(void)
{
    ULONG status = DEBUG_STATUS_NO_DEBUGGEE;
    g_control->lpVtbl->GetExecutionStatus(g_control, &status);
    return status;
}

static int is_running(ULONG status)
{
    return status == DEBUG_STATUS_GO || status == DEBUG_STATUS_GO_HANDLED ||
           status == DEBUG_STATUS_GO_NOT_HANDLED || status == DEBUG_STATUS_STEP_OVER ||
           status == DEBUG_STATUS_STEP_INTO || status == DEBUG_STATUS_STEP_BRANCH ||
           status == DEBUG_STATUS_REVERSE_GO || status == DEBUG_STATUS_REVERSE_STEP_OVER ||
           status == DEBUG_STATUS_REVERSE_STEP_INTO || status == DEBUG_STATUS_REVERSE_STEP_BRANCH;
}

/* Lets the target run until the engine stops it again (an event that breaks, a break-in, or no
 * debuggee left). Event filter commands such as 'sxe -c "...;g"' may resume it inside the wait. */
static void run_until_stopped(void)
{
    for (;;) {
        ULONG status = execution_status();
        HRESULT hr;
        if (!is_running(status))
            return;
        InterlockedExchange(&g_busy, 1);
        take_pending_break();
        hr = g_control->lpVtbl->WaitForEvent(g_control, DEBUG_WAIT_DEFAULT, INFINITE);
        InterlockedExchange(&g_busy, 0);
        status = execution_status();
        if (hr == S_OK && status == DEBUG_STATUS_BREAK) {
            g_control->lpVtbl->OutputCurrentState(g_control, DEBUG_OUTCTL_ALL_CLIENTS, DEBUG_CURRENT_DEFAULT);
            return;
        }
        if (FAILED(hr)) {
            if (status != DEBUG_STATUS_NO_DEBUGGEE)
                say("cdbhost: WaitForEvent failed, HRESULT 0x%08lx\n", (unsigned long)hr);
            return;
        }
    }
}

static void execute(const char *command)
{
    InterlockedExchange(&g_busy, 1);
    g_control->lpVtbl->Execute(g_control, DEBUG_OUTCTL_ALL_CLIENTS, command,
                               DEBUG_EXECUTE_NOT_LOGGED | DEBUG_EXECUTE_NO_REPEAT);
    InterlockedExchange(&g_busy, 0);
    run_until_stopped();
}

/* The last event is a first-chance exception other than a breakpoint (a break-in). */
static int stopped_at_first_chance_exception(void)
{
    ULONG type = 0, pid = 0, tid = 0, used = 0;
    DEBUG_LAST_EVENT_INFO_EXCEPTION info;
    memset(&info, 0, sizeof(info));
    if (FAILED(g_control->lpVtbl->GetLastEventInformation(g_control, &type, &pid, &tid, &info, sizeof(info),
                                                          &used, NULL, 0, NULL)))
        return 0;
    return type == DEBUG_EVENT_EXCEPTION && info.FirstChance &&
           info.ExceptionRecord.ExceptionCode != STATUS_BREAKPOINT &&
           info.ExceptionRecord.ExceptionCode != STATUS_WX86_BREAKPOINT;
}

static DWORD WINAPI break_in_soon(LPVOID unused)
{
    (void)unused;
    Sleep(QD_BREAK_IN_MS);
    g_control->lpVtbl->SetInterrupt(g_control, DEBUG_INTERRUPT_ACTIVE);
    return 0;
}

/* qd: detach and quit, leaving the target running.
 *
 * Windows hands a pending first-chance exception back to the program on detach; Wine's server
 * continues it as handled instead, which kills the .NET runtime. So a pending first-chance
 * exception is first handed back (gn), the target is broken into again (the pending event is then
 * a breakpoint, which both systems continue the same way), and only then does the host detach. */
static void quit_detached(void)
{
    int i;
    if (!g_opt.dump && execution_status() == DEBUG_STATUS_BREAK) {
        for (i = 0; i < QD_HANDBACK_TRIES && stopped_at_first_chance_exception(); ++i) {
            /* The break-in must be asked for while the engine waits (as Ctrl+C is); asked for
             * between two waits it is not acted on. */
            HANDLE timer = CreateThread(NULL, 0, break_in_soon, NULL, 0, NULL);
            g_control->lpVtbl->SetExecutionStatus(g_control, DEBUG_STATUS_GO_NOT_HANDLED);
            g_control->lpVtbl->WaitForEvent(g_control, DEBUG_WAIT_DEFAULT, 10000);
            if (timer) {
                WaitForSingleObject(timer, INFINITE);
                CloseHandle(timer);
            }
            if (execution_status() == DEBUG_STATUS_NO_DEBUGGEE)
                break;
        }
        if (execution_status() != DEBUG_STATUS_NO_DEBUGGEE)
            g_client->lpVtbl->DetachProcesses(g_client);
    }
    g_client->lpVtbl->EndSession(g_client, DEBUG_END_PASSIVE);
    write_out("quit:\n");
}

static void quit(void)
{
    if (g_opt.dump || execution_status() == DEBUG_STATUS_NO_DEBUGGEE) {
        g_client->lpVtbl->EndSession(g_client, DEBUG_END_ACTIVE_TERMINATE);
        write_out("quit:\n");
    } else if (g_opt.detach_on_quit) {
        quit_detached(); /* -pd: q acts like qd */
    } else {
        g_client->lpVtbl->EndSession(g_client, DEBUG_END_ACTIVE_TERMINATE);
        write_out("quit:\n");
    }
}

/* -- command line -------------------------------------------------------------------------- */

/* Appends one argument to a Windows command line with the quoting CommandLineToArgvW undoes. */
static void append_arg(char *dst, size_t cap, const char *arg)
{
    size_t n = strlen(dst);
    int quote = *arg == 0 || strpbrk(arg, " \t\"") != NULL;
    const char *p;
    if (n && n + 1 < cap)
        dst[n++] = ' ';
    if (quote && n + 1 < cap)
        dst[n++] = '"';
    for (p = arg; *p && n + 3 < cap; ++p) {
        size_t slashes = 0;
        while (p[slashes] == '\\')
            ++slashes;
        if (slashes && (p[slashes] == '"' || (quote && p[slashes] == 0))) {
            size_t k;
            for (k = 0; k < slashes * 2 && n + 3 < cap; ++k)
                dst[n++] = '\\';
            p += slashes - 1;
            continue;
        }
        if (*p == '"')
            dst[n++] = '\\';
        dst[n++] = *p;
    }
    if (quote && n + 1 < cap)
        dst[n++] = '"';
    dst[n] = 0;
}

static void usage_error(const char *what, const char *arg)
{
    say("cdbhost: %s: %s\n"
        "usage: cdb [-pd] [-noshell] [-lines] [-cf file] [-y path] [-c cmds] [-g] [-G]\n"
        "           (-p pid | -pn name | -z dump | [-2] [-noinh] [-hd] exe args...)\n",
        what, arg);
    ExitProcess(2);
}

static void parse_options(int argc, char **argv)
{
    int i;
    for (i = 1; i < argc; ++i) {
        const char *a = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        /* cdb takes /x for -x; a POSIX path (Wine accepts those) is the program, not an option */
        if (a[0] != '-' && !(a[0] == '/' && a[1] && !strchr(a + 1, '/')))
            break;
        if (!strcmp(a + 1, "g"))
            g_opt.skip_initial = 1;
        else if (!strcmp(a + 1, "G"))
            g_opt.skip_final = 1;
        else if (!_stricmp(a + 1, "pd"))
            g_opt.detach_on_quit = 1;
        else if (!_stricmp(a + 1, "noshell"))
            g_opt.no_shell = 1;
        else if (!_stricmp(a + 1, "lines"))
            g_opt.lines = 1;
        else if (!strcmp(a + 1, "2"))
            g_opt.new_console = 1;
        else if (!_stricmp(a + 1, "noinh"))
            g_opt.no_inherit = 1;
        else if (!_stricmp(a + 1, "hd"))
            g_opt.no_debug_heap = 1;
        else if (!_stricmp(a + 1, "cf") || !_stricmp(a + 1, "y") || !_stricmp(a + 1, "c") ||
                 !_stricmp(a + 1, "z") || !_stricmp(a + 1, "pn") || !_stricmp(a + 1, "p")) {
            if (!value)
                usage_error("option needs a value", a);
            if (!_stricmp(a + 1, "cf"))
                g_opt.init_file = value;
            else if (!_stricmp(a + 1, "y"))
                g_opt.symbols = value;
            else if (!_stricmp(a + 1, "c"))
                g_opt.commands = value;
            else if (!_stricmp(a + 1, "z"))
                g_opt.dump = value;
            else if (!_stricmp(a + 1, "pn"))
                g_opt.proc_name = value;
            else {
                char *end;
                g_opt.pid = strtoul(value, &end, 0);
                if (*end || !g_opt.pid)
                    usage_error("not a process id", value);
                g_opt.have_pid = 1;
            }
            ++i;
        } else
            usage_error("option not supported by this test bed", a);
    }
    if (i < argc) {
        size_t cap = 32768;
        g_opt.command_line = calloc(1, cap);
        for (; i < argc; ++i)
            append_arg(g_opt.command_line, cap, argv[i]);
    }
    if (!!g_opt.dump + g_opt.have_pid + !!g_opt.proc_name + !!g_opt.command_line != 1)
        usage_error("give exactly one of", "-p, -pn, -z or a program to launch");
}

/* -- start --------------------------------------------------------------------------------- */

static void check(HRESULT hr, const char *what)
{
    if (FAILED(hr)) {
        say("cdbhost: %s failed, HRESULT 0x%08lx\n", what, (unsigned long)hr);
        ExitProcess(1);
    }
}

static void run_init_file(const char *path)
{
    char line[LINE_MAX_CHARS];
    FILE *f = fopen(path, "r");
    if (!f)
        return; /* cdb too carries on without its script */
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (line[0])
            execute(line);
    }
    fclose(f);
}

static void start_target(void)
{
    HRESULT hr;
    if (g_opt.dump) {
        check(g_client->lpVtbl->OpenDumpFile(g_client, g_opt.dump), "OpenDumpFile");
    } else if (g_opt.have_pid || g_opt.proc_name) {
        ULONG pid = g_opt.pid;
        if (g_opt.proc_name) {
            hr = g_client->lpVtbl->GetRunningProcessSystemIdByExecutableName(
                g_client, 0, g_opt.proc_name, DEBUG_GET_PROC_ONLY_MATCH, &pid);
            if (FAILED(hr)) {
                say("cdbhost: no unique process named %s (HRESULT 0x%08lx)\n", g_opt.proc_name,
                    (unsigned long)hr);
                ExitProcess(1);
            }
        }
        hr = g_client->lpVtbl->AttachProcess(g_client, 0, pid, DEBUG_ATTACH_DEFAULT);
        if (FAILED(hr)) {
            say("Cannot debug pid %lu, HRESULT 0x%08lx\n", (unsigned long)pid, (unsigned long)hr);
            ExitProcess(1);
        }
    } else {
        DEBUG_CREATE_PROCESS_OPTIONS create;
        memset(&create, 0, sizeof(create));
        create.CreateFlags = DEBUG_ONLY_THIS_PROCESS;
        if (g_opt.new_console)
            create.CreateFlags |= CREATE_NEW_CONSOLE;
        if (g_opt.no_debug_heap)
            create.CreateFlags |= DEBUG_CREATE_PROCESS_NO_DEBUG_HEAP;
        create.EngCreateFlags = g_opt.no_inherit ? 0 : DEBUG_ECREATE_PROCESS_INHERIT_HANDLES;
        check(g_client->lpVtbl->CreateProcess2(g_client, 0, g_opt.command_line, &create, sizeof(create), NULL,
                                               NULL),
              "CreateProcess2");
    }
    /* The first wait connects the engine to the target and ends at the initial break. */
    InterlockedExchange(&g_busy, 1);
    hr = g_control->lpVtbl->WaitForEvent(g_control, DEBUG_WAIT_DEFAULT, INFINITE);
    InterlockedExchange(&g_busy, 0);
    if (FAILED(hr)) {
        if (g_opt.have_pid || g_opt.proc_name)
            say("Cannot debug pid %lu, HRESULT 0x%08lx\n", (unsigned long)g_opt.pid, (unsigned long)hr);
        else
            say("cdbhost: the first WaitForEvent failed, HRESULT 0x%08lx\n", (unsigned long)hr);
        ExitProcess(1);
    }
    run_until_stopped(); /* with -g the engine is already running again */
    if (execution_status() == DEBUG_STATUS_BREAK)
        g_control->lpVtbl->OutputCurrentState(g_control, DEBUG_OUTCTL_ALL_CLIENTS, DEBUG_CURRENT_DEFAULT);
}

static char *trim(char *s)
{
    char *end;
    while (*s == ' ' || *s == '\t')
        ++s;
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        *--end = 0;
    return s;
}

int main(int argc, char **argv)
{
    static char line[LINE_MAX_CHARS];
    ULONG engine_options = 0, mask = 0;

    InitializeCriticalSection(&g_out_lock);
    g_stdout = GetStdHandle(STD_OUTPUT_HANDLE);
    parse_options(argc, argv);

    check(DebugCreate(&IID_IDebugClient5, (void **)&g_client), "DebugCreate");
    check(g_client->lpVtbl->QueryInterface(g_client, &IID_IDebugControl4, (void **)&g_control),
          "QueryInterface(IDebugControl4)");
    check(g_client->lpVtbl->QueryInterface(g_client, &IID_IDebugSymbols3, (void **)&g_symbols),
          "QueryInterface(IDebugSymbols3)");
    check(g_client->lpVtbl->SetOutputCallbacks(g_client, &g_out_cb), "SetOutputCallbacks");
    /* What a console shows: everything but verbose output. */
    g_client->lpVtbl->GetOutputMask(g_client, &mask);
    mask |= DEBUG_OUTPUT_NORMAL | DEBUG_OUTPUT_ERROR | DEBUG_OUTPUT_WARNING | DEBUG_OUTPUT_PROMPT |
            DEBUG_OUTPUT_PROMPT_REGISTERS | DEBUG_OUTPUT_EXTENSION_WARNING | DEBUG_OUTPUT_DEBUGGEE |
            DEBUG_OUTPUT_DEBUGGEE_PROMPT | DEBUG_OUTPUT_SYMBOLS;
    mask &= ~(ULONG)DEBUG_OUTPUT_VERBOSE;
    g_client->lpVtbl->SetOutputMask(g_client, mask);
    SetConsoleCtrlHandler(on_console_ctrl, TRUE);

    if (!g_opt.dump) {
        if (!g_opt.skip_initial)
            engine_options |= DEBUG_ENGOPT_INITIAL_BREAK;
        if (!g_opt.skip_final)
            engine_options |= DEBUG_ENGOPT_FINAL_BREAK;
    }
    if (g_opt.no_shell)
        engine_options |= DEBUG_ENGOPT_DISALLOW_SHELL_COMMANDS;
    g_control->lpVtbl->AddEngineOptions(g_control, engine_options);
    if (g_opt.symbols)
        g_symbols->lpVtbl->SetSymbolPath(g_symbols, g_opt.symbols);
    if (g_opt.lines)
        g_symbols->lpVtbl->AddSymbolOptions(g_symbols, SYMOPT_LOAD_LINES);

    start_target();
    if (!g_opt.dump)
        execute(WINE_CLR_NOTIFICATION_FILTER);
    if (g_opt.init_file)
        run_init_file(g_opt.init_file);
    if (g_opt.commands)
        execute(g_opt.commands);

    for (;;) {
        char *command;
        g_control->lpVtbl->OutputPrompt(g_control, DEBUG_OUTCTL_THIS_CLIENT, " ");
        if (!fgets(line, sizeof(line), stdin)) {
            quit(); /* end of input: as q (with -pd: as qd) */
            break;
        }
        command = trim(line);
        if (!_stricmp(command, "qd")) {
            quit_detached();
            break;
        }
        if (!_stricmp(command, "q") || !_stricmp(command, "qq")) {
            quit();
            break;
        }
        execute(command);
    }
    ExitProcess(0);
    return 0;
}
