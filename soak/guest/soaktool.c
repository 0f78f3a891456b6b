/*
 * soaktool: the guest side of vportd's soak run (soak/run). Built static on the host and added
 * to the guest's /bin. Every command prints its results as console marks
 * ("VPORTD-MARK key values") and a failure as "VPORTD-MARK fail <what>", then exits 1.
 *
 *   soaktool streams SEED N   ports /dev/virtio-ports/s0..s(N-1): sends a record stream to the
 *                             host on each and checks the host's stream byte by byte, until
 *                             the host's END record came; then finishes its own record, sends
 *                             END and prints "stream-I sent received records-sent
 *                             records-received pauses". Pauses reading and writing at random.
 *   soaktool serve SEED N     ports c0..c(N-1) stay open; every request line "Q ID NONCE"
 *                             from a host client (which comes and goes) is answered
 *                             "A ID ANSWER". SIGTERM ends it: "serve answered".
 *   soaktool churn SEED N     opens a random port of g0..g(N-1), makes 1-3 request/response
 *                             exchanges with the host, closes it, again and again; each
 *                             answer must be exact. SIGTERM ends it after the current
 *                             exchange: "churn opens exchanges".
 *   soaktool hot SEED         opens hot-added ports (names "hot...") as they appear, writes a
 *                             line, holds them a random while and closes them; a port removed
 *                             while held shows as a read error. SIGTERM ends it:
 *                             "hot opens closes gone".
 *
 * The record format (soak/Soak.java has the same code): a 12-byte header
 * A5 TYPE PORT DIR SEQ(le32) LEN(le16) CHECK(le16), then LEN payload bytes. Data records
 * (TYPE 0) have a length and payload derived from (seed, port, direction, seq), so the
 * receiver predicts every byte; the END record (TYPE 1) carries the number of stream bytes
 * sent before it (le64). Exit status 0 on success, 1 on any check failure, 2 usage.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HDR 12
#define MAXPAY 2048
#define MAXREC (HDR + MAXPAY)

static volatile sig_atomic_t stop_flag;

static void on_term(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void catch_term(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL); /* no SA_RESTART: poll returns EINTR */
}

static long long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&t, NULL);
}

static uint32_t mix32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352dU;
	x ^= x >> 15;
	x *= 0x846ca68bU;
	x ^= x >> 16;
	return x;
}

/* dir 0: host to guest, 1: guest to host */
static uint32_t stream_key(uint32_t seed, uint32_t port, uint32_t dir)
{
	return mix32(seed ^ mix32(port * 2 + dir + 1));
}

static uint32_t rng_next(uint32_t *s)
{
	*s = mix32(*s + 0x9e3779b9U);
	return *s;
}

static size_t make_record(uint8_t *b, uint32_t key, uint32_t port, uint32_t dir, uint32_t seq, int end, uint64_t total)
{
	uint32_t len = end ? 8 : 1 + mix32(key + seq * 0x9e3779b9U) % MAXPAY;
	uint32_t type = end ? 1 : 0;
	uint32_t check = mix32(key ^ seq ^ (len << 16) ^ type) & 0xffff;
	b[0] = 0xa5;
	b[1] = (uint8_t)type;
	b[2] = (uint8_t)port;
	b[3] = (uint8_t)dir;
	for (int i = 0; i < 4; i++)
		b[4 + i] = (uint8_t)(seq >> (8 * i));
	b[8] = (uint8_t)len;
	b[9] = (uint8_t)(len >> 8);
	b[10] = (uint8_t)check;
	b[11] = (uint8_t)(check >> 8);
	if (end) {
		for (int i = 0; i < 8; i++)
			b[HDR + i] = (uint8_t)(total >> (8 * i));
	} else {
		uint32_t h = mix32(key ^ (seq * 0x9e3779b9U));
		for (uint32_t i = 0; i < len; i++)
			b[HDR + i] = (uint8_t)((h >> ((i & 3) * 8)) + (i >> 2) * 167);
	}
	return HDR + len;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("VPORTD-MARK fail %s\n", msg);
	fflush(stdout);
	return 1;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
			if (errno == EAGAIN)
				sleep_ms(5);
			continue;
		}
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- streams -------------------------------------------------------------------------- */

struct stream {
	int fd;
	uint32_t port, ktx, krx, rng;
	uint8_t tx[MAXREC];
	size_t txlen, txoff;
	uint32_t txseq;
	uint64_t txbytes;
	int txend, txdone;
	uint8_t rx[MAXREC];
	size_t rxlen, rxoff;
	uint32_t rxseq;
	uint64_t rxbytes, rxrecstart;
	int rxend, rxdone;
	long long tx_resume, rx_resume, idle_until;
	uint64_t pauses;
};

/* checks n received bytes against the expected stream; returns 0 or fails */
static int stream_take(struct stream *s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s->rxdone)
			return fail("streams: port s%u host->guest: %zu byte(s) after the END record", s->port, n - i);
		if (s->rxoff == 0) {
			s->rxlen = make_record(s->rx, s->krx, s->port, 0, s->rxseq, 0, 0);
			s->rxrecstart = s->rxbytes;
		}
		if (s->rxoff == 1 && p[i] == 1 && s->rx[1] == 0) {
			s->rxlen = make_record(s->rx, s->krx, s->port, 0, s->rxseq, 1, s->rxrecstart);
			s->rxend = 1;
		}
		if (p[i] != s->rx[s->rxoff])
			return fail("streams: port s%u host->guest: stream byte %" PRIu64 " (record %u, byte %zu of it): expected 0x%02x, got 0x%02x",
				    s->port, s->rxbytes, s->rxseq, s->rxoff, s->rx[s->rxoff], p[i]);
		s->rxbytes++;
		if (++s->rxoff == s->rxlen) {
			s->rxoff = 0;
			s->rxseq++;
			if (s->rxend)
				s->rxdone = 1;
		}
	}
	return 0;
}

static int cmd_streams(uint32_t seed, int n)
{
	struct stream *ss = calloc((size_t)n, sizeof(*ss));
	struct pollfd *pfd = calloc((size_t)n, sizeof(*pfd));
	int *which = calloc((size_t)n, sizeof(int));
	uint8_t buf[16384];
	if (!ss || !pfd || !which)
		return fail("streams: out of memory");
	for (int i = 0; i < n; i++) {
		struct stream *s = &ss[i];
		char dev[64];
		snprintf(dev, sizeof(dev), "/dev/virtio-ports/s%d", i);
		s->fd = open(dev, O_RDWR | O_NONBLOCK);
		if (s->fd < 0)
			return fail("streams: open %s: %s", dev, strerror(errno));
		s->port = (uint32_t)i;
		s->ktx = stream_key(seed, s->port, 1);
		s->krx = stream_key(seed, s->port, 0);
		s->rng = mix32(seed ^ (0x51ed27u * (uint32_t)(i + 1)));
		s->txlen = make_record(s->tx, s->ktx, s->port, 1, 0, 0, 0);
	}
	int left = n;
	while (left > 0) {
		long long now = now_ms();
		int m = 0;
		for (int i = 0; i < n; i++) {
			struct stream *s = &ss[i];
			if (s->txdone && s->rxdone)
				continue;
			if (now < s->idle_until)
				continue;
			short ev = 0;
			if (!s->rxdone && now >= s->rx_resume)
				ev |= POLLIN;
			if (!s->txdone && now >= s->tx_resume)
				ev |= POLLOUT;
			if (!ev)
				continue;
			pfd[m].fd = s->fd;
			pfd[m].events = ev;
			pfd[m].revents = 0;
			which[m++] = i;
		}
		int r = poll(pfd, (nfds_t)m, 10);
		if (r < 0 && errno != EINTR)
			return fail("streams: poll: %s", strerror(errno));
		if (r <= 0)
			continue;
		now = now_ms();
		for (int k = 0; k < m; k++) {
			struct stream *s = &ss[which[k]];
			short re = pfd[k].revents;
			if (re & POLLIN) {
				ssize_t got = read(s->fd, buf, sizeof(buf));
				if (got > 0) {
					if (stream_take(s, buf, (size_t)got))
						return 1;
					if (rng_next(&s->rng) % 64 == 0) {
						s->rx_resume = now + rng_next(&s->rng) % 200;
						s->pauses++;
					}
				} else if (got == 0) {
					s->idle_until = now + 20; /* host not connected */
				} else if (errno != EAGAIN && errno != EINTR) {
					return fail("streams: read s%u: %s", s->port, strerror(errno));
				}
			}
			if ((re & POLLOUT) && !s->txdone) {
				ssize_t put = write(s->fd, s->tx + s->txoff, s->txlen - s->txoff);
				if (put > 0) {
					s->txoff += (size_t)put;
					s->txbytes += (uint64_t)put;
					if (s->txoff == s->txlen) {
						s->txoff = 0;
						if (s->txend) {
							s->txdone = 1;
						} else {
							s->txseq++;
							/* the host's END came: this record boundary ends our stream */
							s->txend = s->rxdone;
							s->txlen = make_record(s->tx, s->ktx, s->port, 1, s->txseq, s->txend, s->txbytes);
						}
					}
					if (rng_next(&s->rng) % 64 == 0) {
						s->tx_resume = now + rng_next(&s->rng) % 200;
						s->pauses++;
					}
				} else if (put < 0 && errno != EAGAIN && errno != EINTR) {
					return fail("streams: write s%u: %s", s->port, strerror(errno));
				}
			}
			if ((re & POLLHUP) && !(re & (POLLIN | POLLOUT)))
				s->idle_until = now + 20;
			if (s->txdone && s->rxdone) {
				left--;
				s->txdone = 2; /* counted */
			}
		}
	}
	for (int i = 0; i < n; i++) {
		struct stream *s = &ss[i];
		printf("VPORTD-MARK stream-%d %" PRIu64 " %" PRIu64 " %u %u %" PRIu64 "\n", i, s->txbytes, s->rxbytes,
		       s->txseq + 1, s->rxseq, s->pauses);
		close(s->fd);
	}
	fflush(stdout);
	return 0;
}

/* ---- request/response ------------------------------------------------------------------ */

static uint32_t answer_of(uint32_t id, uint32_t nonce)
{
	return mix32(nonce ^ 0x5bd1e995U) ^ (id * 2654435761U);
}

struct server {
	int fd;
	char line[128];
	size_t used;
	char out[128];
	size_t outlen, outoff;
	long long idle_until;
};

static int cmd_serve(int n)
{
	struct server *sv = calloc((size_t)n, sizeof(*sv));
	struct pollfd *pfd = calloc((size_t)n, sizeof(*pfd));
	int *which = calloc((size_t)n, sizeof(int));
	uint64_t answered = 0;
	if (!sv || !pfd || !which)
		return fail("serve: out of memory");
	catch_term();
	for (int i = 0; i < n; i++) {
		char dev[64];
		snprintf(dev, sizeof(dev), "/dev/virtio-ports/c%d", i);
		sv[i].fd = open(dev, O_RDWR | O_NONBLOCK);
		if (sv[i].fd < 0)
			return fail("serve: open %s: %s", dev, strerror(errno));
	}
	while (!stop_flag) {
		long long now = now_ms();
		int m = 0;
		for (int i = 0; i < n; i++) {
			if (now < sv[i].idle_until)
				continue;
			pfd[m].fd = sv[i].fd;
			pfd[m].events = sv[i].outoff < sv[i].outlen ? POLLOUT : POLLIN;
			pfd[m].revents = 0;
			which[m++] = i;
		}
		int r = poll(pfd, (nfds_t)m, 20);
		if (r < 0 && errno != EINTR)
			return fail("serve: poll: %s", strerror(errno));
		if (r <= 0)
			continue;
		now = now_ms();
		for (int k = 0; k < m; k++) {
			struct server *s = &sv[which[k]];
			if (pfd[k].revents & POLLOUT) {
				ssize_t put = write(s->fd, s->out + s->outoff, s->outlen - s->outoff);
				if (put > 0)
					s->outoff += (size_t)put;
				else if (put < 0 && errno != EAGAIN && errno != EINTR)
					return fail("serve: write c%d: %s", which[k], strerror(errno));
				continue;
			}
			if (!(pfd[k].revents & (POLLIN | POLLHUP)))
				continue;
			char buf[256];
			ssize_t got = read(s->fd, buf, sizeof(buf));
			if (got == 0) {
				if (s->used)
					return fail("serve: c%d: the host left with a request half sent (%zu bytes)", which[k], s->used);
				s->idle_until = now + 20;
				continue;
			}
			if (got < 0) {
				if (errno == EAGAIN || errno == EINTR)
					continue;
				return fail("serve: read c%d: %s", which[k], strerror(errno));
			}
			for (ssize_t j = 0; j < got; j++) {
				if (s->used >= sizeof(s->line) - 1)
					return fail("serve: c%d: request line too long", which[k]);
				s->line[s->used++] = buf[j];
				if (buf[j] != '\n')
					continue;
				s->line[s->used] = '\0';
				unsigned id, nonce;
				char nl;
				if (sscanf(s->line, "Q %u %x%c", &id, &nonce, &nl) != 3 || nl != '\n')
					return fail("serve: c%d: bad request line '%.40s'", which[k], s->line);
				if (s->outoff < s->outlen)
					return fail("serve: c%d: a second request before the answer went out", which[k]);
				s->outlen = (size_t)snprintf(s->out, sizeof(s->out), "A %u %08x\n", id, answer_of(id, nonce));
				s->outoff = 0;
				s->used = 0;
				answered++;
				ssize_t put = write(s->fd, s->out, s->outlen);
				if (put > 0)
					s->outoff = (size_t)put;
				else if (put < 0 && errno != EAGAIN && errno != EINTR)
					return fail("serve: write c%d: %s", which[k], strerror(errno));
			}
		}
	}
	printf("VPORTD-MARK serve %" PRIu64 "\n", answered);
	fflush(stdout);
	return 0;
}

/* one exchange on an open port: 0, or 1 after printing the failure */
static int exchange(int fd, int port, uint32_t id, uint32_t nonce)
{
	char req[64], line[128];
	int len = snprintf(req, sizeof(req), "Q %u %08x\n", id, nonce);
	if (write_all(fd, req, (size_t)len) < 0)
		return fail("churn: write g%d: %s", port, strerror(errno));
	size_t used = 0;
	long long deadline = now_ms() + 60000;
	while (used == 0 || line[used - 1] != '\n') {
		if (now_ms() > deadline)
			return fail("churn: g%d: no answer to request %u within 60 s (%zu bytes came)", port, id, used);
		struct pollfd p = { fd, POLLIN, 0 };
		int r = poll(&p, 1, 100);
		if (r <= 0)
			continue;
		ssize_t got = read(fd, line + used, sizeof(line) - 1 - used);
		if (got == 0) {
			sleep_ms(10); /* host end not connected this instant */
			continue;
		}
		if (got < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return fail("churn: read g%d: %s", port, strerror(errno));
		}
		used += (size_t)got;
		if (used >= sizeof(line) - 1)
			return fail("churn: g%d: answer too long", port);
	}
	line[used] = '\0';
	unsigned aid, ans;
	char nl;
	if (sscanf(line, "A %u %x%c", &aid, &ans, &nl) != 3 || nl != '\n' || aid != id || ans != answer_of(id, nonce)
	    || strchr(line, '\n') != line + used - 1)
		return fail("churn: g%d: request %u got the wrong answer '%.40s'", port, id, line);
	return 0;
}

static int cmd_churn(uint32_t seed, int n)
{
	uint32_t rng = mix32(seed ^ 0xc0ffeeU);
	uint64_t opens = 0, exchanges = 0;
	uint32_t id = 0;
	catch_term();
	while (!stop_flag) {
		int port = (int)(rng_next(&rng) % (uint32_t)n);
		char dev[64];
		snprintf(dev, sizeof(dev), "/dev/virtio-ports/g%d", port);
		int fd = open(dev, O_RDWR | O_NONBLOCK);
		if (fd < 0)
			return fail("churn: open %s: %s", dev, strerror(errno));
		opens++;
		int k = 1 + (int)(rng_next(&rng) % 3);
		for (int j = 0; j < k; j++) {
			if (exchange(fd, port, ++id, rng_next(&rng)))
				return 1;
			exchanges++;
		}
		sleep_ms(rng_next(&rng) % 50);
		close(fd);
		sleep_ms(rng_next(&rng) % 100);
	}
	printf("VPORTD-MARK churn %" PRIu64 " %" PRIu64 "\n", opens, exchanges);
	fflush(stdout);
	return 0;
}

/* ---- hot-added ports ------------------------------------------------------------------- */

#define MAXHELD 64

struct held {
	char dev[32];
	int fd;
	long long close_at;
};

static int cmd_hot(uint32_t seed)
{
	uint32_t rng = mix32(seed ^ 0x407u);
	struct held h[MAXHELD];
	int nh = 0;
	uint64_t opens = 0, closes = 0, gone = 0;
	catch_term();
	while (!stop_flag) {
		long long now = now_ms();
		for (int i = 0; i < nh; i++) {
			char b[256];
			ssize_t got = read(h[i].fd, b, sizeof(b));
			int removed = got < 0 && errno != EAGAIN && errno != EINTR;
			if (removed || now >= h[i].close_at) {
				close(h[i].fd);
				if (removed)
					gone++;
				else
					closes++;
				h[i--] = h[--nh];
			}
		}
		DIR *d = opendir("/sys/class/virtio-ports");
		struct dirent *e;
		while (d && (e = readdir(d)) != NULL && nh < MAXHELD) {
			if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof(h[0].dev))
				continue;
			char path[300], name[64];
			snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", e->d_name);
			int nf = open(path, O_RDONLY);
			if (nf < 0)
				continue;
			ssize_t nn = read(nf, name, sizeof(name) - 1);
			close(nf);
			if (nn < 3 || memcmp(name, "hot", 3) != 0)
				continue;
			int have = 0;
			for (int i = 0; i < nh; i++)
				have |= strcmp(h[i].dev, e->d_name) == 0;
			if (have || rng_next(&rng) % 4 != 0)
				continue;
			char dev[300];
			snprintf(dev, sizeof(dev), "/dev/%s", e->d_name);
			int fd = open(dev, O_RDWR | O_NONBLOCK);
			if (fd < 0)
				continue; /* removed meanwhile */
			opens++;
			ssize_t ignored = write(fd, "hello from the guest\n", 21); /* EAGAIN without a host end */
			(void)ignored;
			snprintf(h[nh].dev, sizeof(h[nh].dev), "%s", e->d_name);
			h[nh].fd = fd;
			h[nh].close_at = now + 200 + rng_next(&rng) % 3000;
			nh++;
		}
		if (d)
			closedir(d);
		sleep_ms(50);
	}
	for (int i = 0; i < nh; i++) {
		close(h[i].fd);
		closes++;
	}
	printf("VPORTD-MARK hot %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", opens, closes, gone);
	fflush(stdout);
	return 0;
}

static int number(const char *s, long long max, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	long long seed, n;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 3 && number(argv[2], 0xffffffffLL, &seed) == 0) {
		if (argc == 4 && number(argv[3], 255, &n) == 0 && n > 0) {
			if (strcmp(argv[1], "streams") == 0)
				return cmd_streams((uint32_t)seed, (int)n);
			if (strcmp(argv[1], "serve") == 0)
				return cmd_serve((int)n);
			if (strcmp(argv[1], "churn") == 0)
				return cmd_churn((uint32_t)seed, (int)n);
		}
		if (argc == 3 && strcmp(argv[1], "hot") == 0)
			return cmd_hot((uint32_t)seed);
	}
	fprintf(stderr, "usage: soaktool streams|serve|churn SEED N | hot SEED\n");
	return 2;
}
