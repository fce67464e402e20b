/* isa-debug-exit (QEMU's test device) at port 0xf4: a guest write of v
 * asks for DEV_REQ_STOP with value v (the VM stops with
 * VM_STOP_DEBUG_EXIT and keeps v), so test guests report a result
 * without a console.  ctx->base[0]: the port; 4 ports are claimed so that
 * wide accesses reach it. */
#ifndef VESSEL_HW_DEBUG_EXIT_H
#define VESSEL_HW_DEBUG_EXIT_H

struct dev_ctx;
struct debug_exit;

struct debug_exit *debug_exit_new(const struct dev_ctx *ctx);
void debug_exit_free(struct debug_exit *d);
extern const struct dev_desc debug_exit_device;

#endif
