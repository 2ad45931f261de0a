// Threads that "trap" in a loop the way a stub would: int3 (TRAP=int3) or tgkill(self, SIGURG) (TRAP=urg).
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
static int use_int3;
static volatile long traps;
static void trap(void) {
    if (use_int3) { __asm__ volatile("int3"); }
    else {
        long tid = syscall(SYS_gettid);
        long r;
        __asm__ volatile("syscall" : "=a"(r) : "a"(234L), "D"((long)getpid()), "S"(tid), "d"(23L) : "rcx", "r11", "memory");
    }
    __sync_fetch_and_add(&traps, 1);
}
static int traced(void) {
    char line[256]; int t = 0; FILE *f = fopen("/proc/self/status", "r");
    while (fgets(line, sizeof line, f)) if (!strncmp(line, "TracerPid:", 10)) t = atoi(line + 10);
    fclose(f); return t;
}
static void *run(void *arg) { while (!traced()) usleep(10000); for (;;) { trap(); usleep(200); } return 0; }
int main(int argc, char **argv) {
    use_int3 = argc > 1 && strcmp(argv[1], "int3") == 0;
    setvbuf(stdout, 0, _IONBF, 0);
    printf("PID %d\n", getpid());
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], 0, run, 0);
    for (int s = 0; s < 30; s++) { sleep(1); printf("alive %ld\n", traps); }
    return 0;
}
