/* A user-space driver for the pci-example plug-in's edu function, run in
 * the Linux guest (tests/integration/test_pci_plugin.py), built static on
 * the host.  What DPDK-style drivers do with uio_pci_generic: the BAR
 * through sysfs resource0 (mmap), the interrupt through /dev/uioN (a read
 * returns the count of interrupts, re-armed by clearing the command
 * register's Interrupt Disable bit in sysfs config), DMA to pages whose
 * physical address /proc/self/pagemap gives.
 *
 *   edu_user /sys/bus/pci/devices/0000:00:02.0
 *
 * Prints one line per step ("id 45440001", ...) and "EDU-OK" at the end,
 * or "EDU-FAIL <why>" and exits 1. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <dirent.h>

#define REG_ID        0x000
#define REG_LIVENESS  0x004
#define REG_FACTORIAL 0x008
#define REG_STATUS    0x020
#define REG_ACK       0x028
#define REG_DMA_SRC   0x040
#define REG_DMA_DST   0x048
#define REG_DMA_LEN   0x050
#define REG_DMA_CMD   0x058
#define BUF_OFF       0x1000

static volatile uint8_t *bar;
static int cfg_fd, uio_fd;

static void fail(const char *why)
{
	printf("EDU-FAIL %s (%s)\n", why, strerror(errno));
	exit(1);
}

static uint32_t rd32(unsigned off) { return *(volatile uint32_t *)(bar + off); }
static void wr32(unsigned off, uint32_t v) { *(volatile uint32_t *)(bar + off) = v; }
static void wr64(unsigned off, uint64_t v) { wr32(off, (uint32_t)v); wr32(off + 4, (uint32_t)(v >> 32)); }

static uint16_t command(void)
{
	uint16_t c;
	if (pread(cfg_fd, &c, 2, 4) != 2)
		fail("read command register");
	return c;
}

static void set_command(uint16_t c)
{
	if (pwrite(cfg_fd, &c, 2, 4) != 2)
		fail("write command register");
}

static uint64_t phys_of(void *p)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	uint64_t e;
	if (fd < 0 || pread(fd, &e, 8, (off_t)((uintptr_t)p / 4096 * 8)) != 8)
		fail("pagemap");
	close(fd);
	if (!(e >> 63) || !(e & ((1ull << 55) - 1)))
		fail("page not present or PFN hidden");
	return (e & ((1ull << 55) - 1)) * 4096 + (uintptr_t)p % 4096;
}

/* Waits for the next interrupt; the uio count it returns. */
static uint32_t wait_irq(void)
{
	struct pollfd pfd = { .fd = uio_fd, .events = POLLIN };
	if (poll(&pfd, 1, 10000) != 1)
		fail("no interrupt within 10 s");
	uint32_t n;
	if (read(uio_fd, &n, 4) != 4)
		fail("read uio");
	return n;
}

/* Acknowledges the device, then unmasks INTx (uio_pci_generic masked it). */
static void ack_irq(uint32_t cause)
{
	wr32(REG_ACK, cause);
	set_command(command() & ~0x400);
}

static void dma(uint64_t src, uint64_t dst, uint32_t len, uint32_t cmd)
{
	wr64(REG_DMA_SRC, src);
	wr64(REG_DMA_DST, dst);
	wr32(REG_DMA_LEN, len);
	wr32(REG_DMA_CMD, cmd | 0x1 | 0x4);
	uint32_t n = wait_irq();
	uint32_t st = rd32(REG_STATUS), c = rd32(REG_DMA_CMD);
	printf("dma cmd %x status %x irq-count %u\n", c, st, n);
	if (!(st & 0x100) || (c & 0x9))
		fail("DMA did not complete");
	ack_irq(st);
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	char path[512];
	snprintf(path, sizeof(path), "%s/resource0", argv[1]);
	int fd = open(path, O_RDWR | O_SYNC);
	if (fd < 0)
		fail("open resource0");
	bar = mmap(NULL, 0x2000, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (bar == MAP_FAILED)
		fail("mmap resource0");
	snprintf(path, sizeof(path), "%s/config", argv[1]);
	if ((cfg_fd = open(path, O_RDWR)) < 0)
		fail("open config");
	snprintf(path, sizeof(path), "%s/uio", argv[1]);
	DIR *d = opendir(path);
	struct dirent *e;
	char uio[300] = "";
	while (d && (e = readdir(d)))
		if (!strncmp(e->d_name, "uio", 3))
			snprintf(uio, sizeof(uio), "/dev/%s", e->d_name);
	if (!uio[0] || (uio_fd = open(uio, O_RDWR)) < 0)
		fail("no uio device (is uio_pci_generic bound?)");

	printf("id %x\n", rd32(REG_ID));
	wr32(REG_LIVENESS, 0x12345678);
	printf("liveness %x\n", rd32(REG_LIVENESS));
	wr32(REG_FACTORIAL, 12);
	printf("factorial %u\n", rd32(REG_FACTORIAL));
	if (rd32(REG_ID) != 0x45440001 || rd32(REG_LIVENESS) != ~0x12345678u || rd32(REG_FACTORIAL) != 479001600)
		fail("registers");

	/* An interrupt the driver raises itself (cause bit 0). */
	set_command((command() | 0x4) & ~0x400);   /* bus master on, INTx unmasked */
	wr32(0x024, 1);
	printf("raise irq-count %u\n", wait_irq());
	ack_irq(1);

	/* Two pages of guest RAM, locked so that their frames stay. */
	uint8_t *src, *dst;
	if (posix_memalign((void **)&src, 4096, 4096) || posix_memalign((void **)&dst, 4096, 4096))
		fail("memory");
	if (mlockall(MCL_CURRENT) < 0)
		fail("mlockall");
	for (unsigned i = 0; i < 4096; i++) {
		src[i] = (uint8_t)(i * 7 + 3);
		dst[i] = 0;
	}
	dma(phys_of(src), 0, 4096, 0);               /* RAM to the device buffer */
	for (unsigned i = 0; i < 4096; i += 4)
		if (rd32(BUF_OFF + i) != *(uint32_t *)(src + i))
			fail("buffer differs from the source");
	dma(0, phys_of(dst), 4096, 0x2);             /* buffer back to RAM */
	if (memcmp(src, dst, 4096))
		fail("DMA result differs");
	printf("EDU-OK\n");
	return 0;
}
