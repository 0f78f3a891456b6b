/*
 * benchtool: the guest side of vportd's side-by-side benchmark (bench/run).
 * Built static on the host by bench/run and added to the guest's /bin.
 *
 * Every data command opens the port, writes one 'R' byte (ready) so the host knows the
 * guest side is open, then does its part. The host takes its clock readings; the guest
 * only moves bytes, so the figures do not depend on the guest's clock.
 *
 *   benchtool tx DEV SIZE TOTAL     write TOTAL bytes to DEV in write(2) calls of SIZE bytes,
 *                                   then wait for the host's one-byte acknowledgement
 *   benchtool rx DEV SIZE TOTAL     read TOTAL bytes from DEV with a SIZE-byte buffer, then
 *                                   write one 'A' byte (the host stops its clock on it)
 *   benchtool echo DEV MSG COUNT    COUNT times: read exactly MSG bytes, write them back
 *   benchtool names PREFIX N MS     wait until N ports whose name starts with PREFIX are in
 *                                   /sys/class/virtio-ports (polls every 10 ms); gives up when
 *                                   no new one came for MS milliseconds. Each time the count
 *                                   grows it prints "VPORTD-MARK names-seen COUNT" on the
 *                                   console; at the end it prints the count on standard output
 *                                   (exit 1 if fewer than N)
 *
 * Exit status 0 on success, 1 on an I/O error or a short stream (message on stderr), 2 usage.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int die(const char *what)
{
	fprintf(stderr, "benchtool: %s: %s\n", what, errno ? strerror(errno) : "end of stream");
	return 1;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_all(int fd, char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = read(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = 0;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static long long parse_size(const char *s)
{
	char *end;
	long long v = strtoll(s, &end, 10);
	if (end == s || *end != '\0' || v <= 0)
		return -1;
	return v;
}

static int open_port(const char *dev)
{
	int fd = open(dev, O_RDWR);
	if (fd < 0)
		return -1;
	if (write_all(fd, "R", 1) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int cmd_tx(const char *dev, long long size, long long total)
{
	char *buf = malloc((size_t)size);
	if (!buf)
		return die("malloc");
	for (long long i = 0; i < size; i++)
		buf[i] = (char)(i * 131 + 7);
	int fd = open_port(dev);
	if (fd < 0)
		return die(dev);
	long long left = total;
	while (left > 0) {
		size_t chunk = left < size ? (size_t)left : (size_t)size;
		if (write_all(fd, buf, chunk) < 0)
			return die("write");
		left -= (long long)chunk;
	}
	char ack;
	if (read_all(fd, &ack, 1) < 0)
		return die("read acknowledgement");
	close(fd);
	return 0;
}

static int cmd_rx(const char *dev, long long size, long long total)
{
	char *buf = malloc((size_t)size);
	if (!buf)
		return die("malloc");
	int fd = open_port(dev);
	if (fd < 0)
		return die(dev);
	long long left = total;
	while (left > 0) {
		size_t want = left < size ? (size_t)left : (size_t)size;
		ssize_t n = read(fd, buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = 0;
			return die("read");
		}
		left -= n;
	}
	if (write_all(fd, "A", 1) < 0)
		return die("write acknowledgement");
	close(fd);
	return 0;
}

static int cmd_echo(const char *dev, long long msg, long long count)
{
	char *buf = malloc((size_t)msg);
	if (!buf)
		return die("malloc");
	int fd = open_port(dev);
	if (fd < 0)
		return die(dev);
	for (long long i = 0; i < count; i++) {
		if (read_all(fd, buf, (size_t)msg) < 0)
			return die("read");
		if (write_all(fd, buf, (size_t)msg) < 0)
			return die("write");
	}
	close(fd);
	return 0;
}

static int count_names(const char *prefix)
{
	DIR *d = opendir("/sys/class/virtio-ports");
	if (!d)
		return 0;
	struct dirent *e;
	int found = 0;
	size_t plen = strlen(prefix);
	char path[512], name[256];
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", e->d_name);
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, name, sizeof(name) - 1);
		close(fd);
		if (n > 0 && (size_t)n >= plen && memcmp(name, prefix, plen) == 0)
			found++;
	}
	closedir(d);
	return found;
}

static long long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int cmd_names(const char *prefix, long long want, long long limit_ms)
{
	const struct timespec tick = { 0, 10 * 1000 * 1000 };
	long long deadline = now_ms() + limit_ms;
	int n, last = -1;
	FILE *con = fopen("/dev/console", "w");
	while ((n = count_names(prefix)) < want && now_ms() < deadline) {
		if (n != last) {
			last = n;
			deadline = now_ms() + limit_ms;
			if (con) {
				fprintf(con, "VPORTD-MARK names-seen %d\n", n);
				fflush(con);
			}
		}
		nanosleep(&tick, NULL);
	}
	if (con)
		fclose(con);
	printf("%d\n", n);
	return n >= want ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 5 && (strcmp(argv[1], "tx") == 0 || strcmp(argv[1], "rx") == 0 || strcmp(argv[1], "echo") == 0)) {
		long long a = parse_size(argv[3]), b = parse_size(argv[4]);
		if (a < 0 || b < 0 || a > (1LL << 30))
			goto usage;
		if (argv[1][0] == 't')
			return cmd_tx(argv[2], a, b);
		if (argv[1][0] == 'r')
			return cmd_rx(argv[2], a, b);
		return cmd_echo(argv[2], a, b);
	}
	if (argc == 5 && strcmp(argv[1], "names") == 0) {
		long long n = parse_size(argv[3]), ms = parse_size(argv[4]);
		if (n < 0 || ms < 0)
			goto usage;
		return cmd_names(argv[2], n, ms);
	}
usage:
	fprintf(stderr, "usage: benchtool tx|rx DEV SIZE TOTAL | echo DEV MSG COUNT | names PREFIX N MS\n");
	return 2;
}
