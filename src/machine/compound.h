/* Which compounding mechanisms run (docs/compounding.md): `--compound`
 * and the manifest's "compound" field.  Every mechanism is on by default;
 * each can be turned off alone so that a regression can be bisected. */
#ifndef VESSEL_MACHINE_COMPOUND_H
#define VESSEL_MACHINE_COMPOUND_H

enum {
	COMPOUND_CONSOLE = 1u << 0,    /* serial output written once per burst */
	COMPOUND_TIMER = 1u << 1,      /* timer re-arms wake the timer thread only when they must */
	COMPOUND_LOOKAHEAD = 1u << 2,  /* KVM engine: trapping instructions after a trap run in the emu engine */
	COMPOUND_BLOCK = 1u << 3,      /* virtio-blk: a notification's requests in one submission (io_uring) */
	COMPOUND_NET = 1u << 4,        /* network: a notification's frames in one submission, reads in batches */
	COMPOUND_ALL = COMPOUND_CONSOLE | COMPOUND_TIMER | COMPOUND_LOOKAHEAD | COMPOUND_BLOCK | COMPOUND_NET,
};

/* spec: NULL (all on), or a comma-separated list of "on", "off", a
 * mechanism's name (on) or NAME=on|off, applied left to right from all
 * on: "off", "console=off,lookahead=off", "off,console".  Returns 0 and
 * the mechanisms in *out, or -EINVAL with err_set(). */
int compound_parse(const char *spec, unsigned *out);
/* "console,timer,lookahead,block,net" or "off": the mechanisms of mask, for messages. */
const char *compound_describe(unsigned mask, char *buf, unsigned n);

#endif
