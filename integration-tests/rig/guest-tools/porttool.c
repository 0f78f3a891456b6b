/*
 * porttool: small guest-side helpers busybox lacks, for the vportd guest tests.
 * Built static on the host by integration-tests/rig/setup and put in the guest's /bin.
 *
 *   porttool poll            poll(2) standard input once (no waiting) and print the
 *                            returned events, e.g. "POLLIN POLLHUP" ("none" when empty)
 *   porttool poll-wait MS    the same, waiting up to MS milliseconds for any event
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int do_poll(int timeout_ms)
{
	struct pollfd p = { .fd = 0, .events = POLLIN | POLLOUT | POLLPRI };
	int n;

	do {
		n = poll(&p, 1, timeout_ms);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		fprintf(stderr, "porttool: poll: %s\n", strerror(errno));
		return 1;
	}
	if (n == 0 || p.revents == 0) {
		puts("none");
		return 0;
	}
	const struct { short bit; const char *name; } names[] = {
		{ POLLIN, "POLLIN" }, { POLLPRI, "POLLPRI" }, { POLLOUT, "POLLOUT" },
		{ POLLERR, "POLLERR" }, { POLLHUP, "POLLHUP" }, { POLLNVAL, "POLLNVAL" },
	};
	const char *sep = "";
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (p.revents & names[i].bit) {
			printf("%s%s", sep, names[i].name);
			sep = " ";
		}
	}
	putchar('\n');
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "poll") == 0)
		return do_poll(0);
	if (argc == 3 && strcmp(argv[1], "poll-wait") == 0)
		return do_poll(atoi(argv[2]));
	fprintf(stderr, "usage: porttool poll | porttool poll-wait MS   (polls standard input)\n");
	return 2;
}
