// Threads that "throw" in a tight loop; each throw asks for a verdict the way a stub could:
//   none: no question (the unwatched rate);
//   urg:  tgkill(self, SIGURG): a signal stop under the debugger, as the stub's trap is now;
//   pipe: under an in-process lock, send a 64-byte request (tid, count, a message) on a unix SEQPACKET
//         socket connected to SOCK and block reading the 1-byte verdict (end of file, EPIPE: the one who
//         answers is gone, go on). MSG_NOSIGNAL: a send to a dead peer is EPIPE, not a SIGPIPE (a FIFO's write
//         would raise SIGPIPE, which kills a program that does not ignore it). A "y" verdict: the
//         SIGURG trap, as in mode urg.
// Prints "PID n" first, then each second the throws so far.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>
static int mode;  // 0 none, 1 urg, 2 pipe
static int sock = -1;
static volatile long throws, verdicts_yes, eofs, errors;
static pthread_mutex_t ask_lock = PTHREAD_MUTEX_INITIALIZER;
static void ask(long n) {
    if (mode == 1) {
        long r;
        __asm__ volatile("syscall" : "=a"(r) : "a"(234L), "D"((long)getpid()), "S"(syscall(SYS_gettid)), "d"(23L)
                         : "rcx", "r11", "memory");
    } else if (mode == 2 && sock >= 0) {
        char rec[64] = {0};
        long tid = syscall(SYS_gettid);
        memcpy(rec, &tid, 8);
        memcpy(rec + 8, &n, 8);
        strcpy(rec + 16, "storm: a message the predicate reads");
        char v = 0;
        pthread_mutex_lock(&ask_lock);
        ssize_t w;
        do w = send(sock, rec, sizeof rec, MSG_NOSIGNAL); while (w < 0 && errno == EINTR);
        ssize_t r = -1;
        if (w == sizeof rec) do r = recv(sock, &v, 1, 0); while (r < 0 && errno == EINTR);
        pthread_mutex_unlock(&ask_lock);
        if (r == 1 && v == 'y') {  // a match: the trap, a stop under the debugger (as mode urg)
            __sync_fetch_and_add(&verdicts_yes, 1);
            long x;
            __asm__ volatile("syscall" : "=a"(x) : "a"(234L), "D"((long)getpid()), "S"(tid), "d"(23L)
                             : "rcx", "r11", "memory");
        }
        int gone = r == 0 || ((w < 0 || r < 0) && (errno == EPIPE || errno == ECONNRESET));
        if (gone) __sync_fetch_and_add(&eofs, 1);  // no one answers any more: go on
        else if (r < 0 || w != sizeof rec) __sync_fetch_and_add(&errors, 1);
    }
}
static void *run(void *arg) {
    for (long n = 0;; n++) { ask(n); __sync_fetch_and_add(&throws, 1); }
    return 0;
}
int main(int argc, char **argv) {
    mode = !strcmp(argv[1], "urg") ? 1 : !strcmp(argv[1], "pipe") ? 2 : 0;
    int threads = argc > 2 ? atoi(argv[2]) : 4, seconds = argc > 3 ? atoi(argv[3]) : 30;
    setvbuf(stdout, 0, _IONBF, 0);
    printf("PID %d\n", getpid());
    if (mode == 2) {  // connect once the one who answers listens
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        strncpy(a.sun_path, getenv("SOCK"), sizeof a.sun_path - 1);
        sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        while (connect(sock, (struct sockaddr *)&a, sizeof a) < 0) usleep(10000);
    }
    if (getenv("WAIT_TRACED")) {  // start throwing once a debugger is attached
        for (;;) {
            char line[256]; int t = 0; FILE *f = fopen("/proc/self/status", "r");
            while (fgets(line, sizeof line, f)) if (!strncmp(line, "TracerPid:", 10)) t = atoi(line + 10);
            fclose(f);
            if (t) break;
            usleep(10000);
        }
    }
    pthread_t t[64];
    for (int i = 0; i < threads; i++) pthread_create(&t[i], 0, run, 0);
    for (int s = 0; s < seconds; s++) { sleep(1); printf("throws %ld yes %ld eof %ld errors %ld\n", throws, verdicts_yes, eofs, errors); }
    return 0;
}
