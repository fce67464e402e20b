/* 16550A UART (National Semiconductor PC16550D datasheet) on COM1: 16-byte
 * receive FIFO, interrupt identification, line and modem status, loopback
 * and scratch register.  Output goes to a chardev at once (the transmitter
 * is infinitely fast); input comes from the chardev, flow-controlled by
 * the FIFO's free space.  Guarded by vm->dev_lock. */
#ifndef VESSEL_HW_UART_H
#define VESSEL_HW_UART_H

#include <stddef.h>
#include <stdint.h>

struct dev_ctx;
struct uart;

#define UART_FIFO_SIZE 16

/* ctx->base[0]: the 8 registers; ctx->irq[0]: the interrupt line;
 * ctx->arg: the console (struct chardev *, may be NULL), whose reader
 * thread delivers input under ctx->lock. */
struct uart *uart_new(const struct dev_ctx *ctx);
void uart_free(struct uart *u);
void uart_reset(struct uart *u);
extern const struct dev_desc uart_device;
/* Input from the owner: accepts what fits in the receive FIFO, returns how much. */
size_t uart_receive(struct uart *u, const uint8_t *buf, size_t len);
size_t uart_rx_room(struct uart *u);

/* Snapshot state (docs/devices.md "Snapshots"): snapshot_save_fn and
 * snapshot_load_fn of src/machine/device_registry.h, opaque the device;
 * call with vm->dev_lock held.  Load refuses a bad blob with -EINVAL. */
int64_t uart_snapshot_save(void *opaque, void *buf, size_t cap);
int uart_snapshot_load(void *opaque, const void *buf, size_t len);

#endif
