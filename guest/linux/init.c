/* SPDX-License-Identifier: MIT */
/*
 * nubis init: PID 1 of the initramfs built by guest/linux/build.sh.
 *
 * Contract with the monitor (docs/LINUX-VMS.md):
 *   - prints "NUBIS-INIT uptime=<seconds>" first (from /proc/uptime), for timing;
 *   - mounts proc, sys and devtmpfs;
 *   - loads the modules listed in /etc/nubis/modules (one path a line, dependencies
 *     first) with finit_module(); a module that fails prints one line and is skipped;
 *     then prints "NUBIS-MODULES uptime=<s> loaded=N failed=M" (nubis.modules=0 on the
 *     command line: no modules);
 *   - runs the command in the kernel command-line word nubis.run=...:
 *       nubis.run=/bin/cat,/proc/cpuinfo       words separated by commas
 *       "nubis.run=/bin/echo hello world"      a quoted word: separated by spaces
 *     (no nubis.run: /bin/sh, busybox's shell, on the console);
 *   - prints "NUBIS-EXIT status=N" (N: exit status, or 128 + signal) and powers off.
 * Any failure of init itself prints "NUBIS-EXIT status=255 error=<what>" and powers off.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ARGS 64
#define CMDLINE_MAX 4096

static void poweroff(void)
{
	sync();
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}

static void fail(const char *what)
{
	printf("NUBIS-EXIT status=255 error=%s:%s\n", what, strerror(errno));
	fflush(stdout);
	poweroff();
}

static size_t read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	size_t got = 0;
	while (got + 1 < cap) {
		ssize_t n = read(fd, buf + got, cap - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = 0;
	return got;
}

static void print_uptime(const char *tag, const char *extra)
{
	char up[64];
	if (read_small("/proc/uptime", up, sizeof(up))) {
		up[strcspn(up, " \n")] = 0;
		printf("%s uptime=%s%s\n", tag, up, extra);
	}
}

static void load_modules(void)
{
	static char list[16384];
	char summary[64];
	int loaded = 0, failed = 0;
	if (!read_small("/etc/nubis/modules", list, sizeof(list)))
		return;
	for (char *save = NULL, *path = strtok_r(list, "\n", &save); path;
	     path = strtok_r(NULL, "\n", &save)) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || syscall(SYS_finit_module, fd, "", 0) != 0) {
			if (errno != EEXIST) {
				printf("nubis-init: module %s: %s (skipped)\n", path,
				       strerror(errno));
				failed++;
			}
		} else {
			loaded++;
		}
		if (fd >= 0)
			close(fd);
	}
	snprintf(summary, sizeof(summary), " loaded=%d failed=%d", loaded, failed);
	print_uptime("NUBIS-MODULES", summary);
}

/* nubis.modules=0 on the kernel command line: load no modules. */
static int modules_wanted(const char *cmdline)
{
	for (const char *p = strstr(cmdline, "nubis.modules="); p; p = strstr(p + 1, "nubis.modules="))
		if ((p == cmdline || p[-1] == ' ') && p[14] == '0')
			return 0;
	return 1;
}

/* Split the value of nubis.run= (in place) into argv. Returns argc, 0 if absent. */
static int parse_run(char *cmdline, char **argv)
{
	int argc = 0;
	char *p = cmdline;
	while (*p) {
		while (*p == ' ' || *p == '\n' || *p == '\t')
			p++;
		if (!*p)
			break;
		int quoted = *p == '"';
		char *w = quoted ? p + 1 : p;
		char *end = w;
		while (*end && (quoted ? *end != '"' : (*end != ' ' && *end != '\n')))
			end++;
		char *next = *end ? end + 1 : end;
		*end = 0;
		if (!strncmp(w, "nubis.run=", 10)) {
			char sep = quoted ? ' ' : ',';
			argc = 0;
			for (char *a = w + 10; *a && argc < MAX_ARGS - 1;) {
				char *e = strchr(a, sep);
				if (e)
					*e = 0;
				if (*a)
					argv[argc++] = a;
				if (!e)
					break;
				a = e + 1;
			}
			argv[argc] = NULL;
		}
		p = next;
	}
	return argc;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	mkdir("/proc", 0755);
	mkdir("/sys", 0755);
	mkdir("/dev", 0755);
	if (mount("proc", "/proc", "proc", 0, NULL) < 0 && errno != EBUSY)
		fail("mount-proc");
	print_uptime("NUBIS-INIT", "");
	if (mount("sysfs", "/sys", "sysfs", 0, NULL) < 0 && errno != EBUSY)
		fail("mount-sys");
	if (mount("devtmpfs", "/dev", "devtmpfs", 0, NULL) < 0 && errno != EBUSY)
		fail("mount-dev");
	static char cmdline[CMDLINE_MAX];
	char *argv[MAX_ARGS + 1];
	read_small("/proc/cmdline", cmdline, sizeof(cmdline));
	if (modules_wanted(cmdline))
		load_modules();
	if (!parse_run(cmdline, argv)) {
		argv[0] = "/bin/sh";
		argv[1] = NULL;
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		fail("fork");
	if (pid == 0) {
		setsid();
		int tty = open("/dev/console", O_RDWR);
		if (tty >= 0) {
			ioctl(tty, 0x540E /* TIOCSCTTY */, 0);
			close(tty);
		}
		/* GLIBC_TUNABLES: on kvm_pvm guest user code runs natively and its CPUID and
		 * XGETBV show the HOST's features (AVX, AVX-512) while the guest kernel, booted
		 * with noxsave, saves only the FXSAVE state: glibc programs (busybox-static) are
		 * kept to SSE2 code paths. Unknown names are ignored by glibc; musl ignores it. */
		char *envp[] = {"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/", "TERM=linux",
				"GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX,-AVX2,-AVX512F,-AVX512VL,"
				"-AVX512BW,-AVX512DQ,-AVX512CD,-AVX_Usable,-AVX2_Usable,"
				"-AVX512F_Usable,-AVX512VL_Usable,-AVX512BW_Usable,-AVX512DQ_Usable,"
				"-AVX_Fast_Unaligned_Load,-FMA,-FMA4,-BMI1,-BMI2,-LZCNT,-MOVBE,"
				"-POPCNT,-SSE4_1,-SSE4_2,-SSSE3,-RTM,-XSAVE,-XSAVEC,-ERMS,-FSRM",
				NULL};
		execve(argv[0], argv, envp);
		printf("nubis-init: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	int st = 0;
	for (;;) { /* PID 1 reaps every orphan; stop when our command ends */
		pid_t w = wait(&st);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			fail("wait");
	}
	int status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	printf("NUBIS-EXIT status=%d\n", status);
	fflush(stdout);
	poweroff();
	return 0;
}
