/* isa-debug-exit (QEMU's test device) at port 0xf4: a guest write of v
 * sets vm->debug_exit_value = v and stops the VM with VM_STOP_DEBUG_EXIT,
 * so test guests report a result without a console. */
#ifndef VESSEL_HW_DEBUG_EXIT_H
#define VESSEL_HW_DEBUG_EXIT_H

struct vm;
struct bus;
struct debug_exit;

struct debug_exit *debug_exit_new(struct vm *vm);
void debug_exit_free(struct debug_exit *d);
int debug_exit_register(struct debug_exit *d, struct bus *pio);

#endif
