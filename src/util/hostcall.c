#include "util/hostcall.h"

_Atomic uint64_t host_call_counts[HOST_CALL_KINDS];
_Atomic uint64_t compound_counts[COMPOUND_STATS];

static const char *const call_names[HOST_CALL_KINDS] = { "write", "read", "poll", "ioctl", "wake",
								 "disk_io", "io_submit", "io_wait",
								 "net_write", "net_read", "net_tx_submit", "net_rx_submit" };
static const char *const stat_names[COMPOUND_STATS] = {
	"console_bytes", "console_writes", "timer_rearms", "timer_wakes_saved",
	"lookahead_runs", "lookahead_insns", "lookahead_exits_saved",
	"disk_requests", "disk_batches",
	"net_tx_frames", "net_tx_batches", "net_rx_frames", "net_rx_batches",
};

const char *host_call_name(enum host_call k)
{
	return (unsigned)k < HOST_CALL_KINDS ? call_names[k] : "?";
}

const char *compound_stat_name(enum compound_stat s)
{
	return (unsigned)s < COMPOUND_STATS ? stat_names[s] : "?";
}
