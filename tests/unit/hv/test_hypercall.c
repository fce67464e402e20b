/* The hypercalls Linux uses (TLFS 3.7 convention, 4.5 flushes, 10.5
 * IPIs) on the PC platform's LAPICs: results and rep counts, VP masks
 * and sets, refused inputs, calls of features turned off, and a remote
 * flush that waits for a running target. */
#include "hv_harness.h"

#include "hv/hv_vmbus.h"
#include "hv/hypercall.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define IN_GPA 0x200000ull
#define FAST (1ull << 16)
#define VARHEAD(n) ((uint64_t)(n) << 17)
#define REPS(n) ((uint64_t)(n) << 32)

static struct tvm *new_vm(unsigned ncpus, const char *spec)
{
	bool on;
	uint32_t features;
	cr_assert_eq(hv_parse(spec, &on, &features), 0);
	return hvt_vm_new(ncpus, features);
}

static void free_vm(struct tvm *t) { hvt_vm_free(t); }

static uint64_t call(struct tvm *t, unsigned cpu, uint64_t control, uint64_t in, uint64_t in2)
{
	struct vcpu_exit ex = { .reason = VCPU_EXIT_HYPERCALL };
	ex.hypercall.code = control;
	ex.hypercall.in_gpa = in;
	ex.hypercall.out_gpa = in2;
	hv_hypercall(&t->cpu[cpu], &ex);
	return ex.hypercall.result;
}

static void put(struct tvm *t, const uint64_t *words, unsigned n)
{
	cr_assert_eq(gmem_write(&t->vm.mem, IN_GPA, words, n * 8), 0);
}

static bool irr(struct tvm *t, unsigned cpu, uint8_t v) { return lapic_test_irr(t->cpu[cpu].lapic, v); }

Test(hypercall, unknown_and_turned_off_calls_are_invalid_codes)
{
	struct tvm *t = new_vm(2, "-tlbflush,-ipi");
	cr_assert_eq(call(t, 0, 0x46, IN_GPA, 0), 2, "GetPartitionId is not offered");
	cr_assert_eq(call(t, 0, 0x0b | FAST, 0x40, 2), 2, "ipi off");
	cr_assert_eq(call(t, 0, 0x02, IN_GPA, 0), 2, "tlbflush off");
	cr_assert(!irr(t, 1, 0x40));
	struct hv_info info;
	cr_assert(hv_get_info(&t->vm, &info));
	cr_assert_eq(info.hypercalls, 3);
	cr_assert_eq(info.hypercalls_by[HV_HC_OTHER], 1);
	cr_assert_eq(info.hypercalls_by[HV_HC_SEND_IPI], 1);
	cr_assert_str_eq(hv_hypercall_name(HV_HC_SEND_IPI), "HvCallSendSyntheticClusterIpi");
	free_vm(t);
}

Test(hypercall, send_ipi_fast_memory_and_ex)
{
	struct tvm *t = new_vm(3, NULL);
	/* Fast: vector in RDX, mask in R8; VP 5 has no vCPU and is ignored. */
	cr_assert_eq(call(t, 0, 0x0b | FAST, 0x41, (1u << 1) | (1u << 5)), 0);
	cr_assert(irr(t, 1, 0x41));
	cr_assert(!irr(t, 0, 0x41) && !irr(t, 2, 0x41));
	/* Memory input. */
	uint64_t in[] = { 0x42, 1u << 2 };
	put(t, in, 2);
	cr_assert_eq(call(t, 0, 0x0b, IN_GPA, 0), 0);
	cr_assert(irr(t, 2, 0x42) && !irr(t, 1, 0x42));
	/* Ex: vector, then an HV_VP_SET: sparse, bank 0, VPs 0 and 2. */
	uint64_t ex[] = { 0x43, 0, 1, 0x5 };
	put(t, ex, 4);
	cr_assert_eq(call(t, 0, 0x15 | VARHEAD(1), IN_GPA, 0), 0);
	cr_assert(irr(t, 0, 0x43) && irr(t, 2, 0x43) && !irr(t, 1, 0x43));
	/* Ex, all processors. */
	uint64_t all[] = { 0x44, 1, 0 };
	put(t, all, 3);
	cr_assert_eq(call(t, 0, 0x15, IN_GPA, 0), 0);
	for (unsigned i = 0; i < 3; i++)
		cr_assert(irr(t, i, 0x44));
	/* Refused: vectors below 16, a bank the header does not hold, a
	 * misaligned input, reps on a simple call, reserved bits. */
	cr_assert_eq(call(t, 0, 0x0b | FAST, 0x0f, 2), 5);
	uint64_t short_set[] = { 0x45, 0, 1 };
	put(t, short_set, 3);
	cr_assert_eq(call(t, 0, 0x15, IN_GPA, 0), 3);
	cr_assert_eq(call(t, 0, 0x0b, IN_GPA + 4, 0), 4);
	cr_assert_eq(call(t, 0, 0x0b | FAST | REPS(1), 0x46, 2), 3);
	cr_assert_eq(call(t, 0, 0x0b | FAST | (1ull << 60), 0x46, 2), 3);
	cr_assert(!irr(t, 1, 0x45) && !irr(t, 1, 0x46));
	free_vm(t);
}

Test(hypercall, flushes_ask_the_targets_and_complete_every_rep)
{
	struct tvm *t = new_vm(3, NULL);
	/* HV_TLB_FLUSH: address space, flags, mask {1}; vCPU 0 is the caller. */
	uint64_t in[] = { 0x1000, 0, 1u << 1, 0x7000, 0x9003 };
	put(t, in, 5);
	cr_assert_eq(call(t, 0, 0x02, IN_GPA, 0), 0);
	cr_assert_eq(atomic_load(&t->cpu[1].tlb_flush_req), 1);
	cr_assert(atomic_load(&t->cpu[1].events) & VCPU_EVT_TLB_FLUSH, "asked");
	cr_assert_eq(atomic_load(&t->cpu[2].tlb_flush_req), 0, "not named");
	/* The list form: reps are the page list, all completed. */
	cr_assert_eq(call(t, 0, 0x03 | REPS(2), IN_GPA, 0), REPS(2));
	cr_assert_eq(atomic_load(&t->cpu[1].tlb_flush_req), 2);
	/* All processors, the caller included: it flushes at once. */
	uint64_t all[] = { 0, 3, 0 };
	put(t, all, 3);
	cr_assert_eq(call(t, 0, 0x02, IN_GPA, 0), 0);
	cr_assert_eq(atomic_load(&t->cpu[2].tlb_flush_req), 1);
	cr_assert_eq(atomic_load(&t->cpu[0].tlb_flush_req), 0, "no request to itself");
	cr_assert_eq(atomic_load(&t->cpu[0].events) & VCPU_EVT_TLB_FLUSH, 0);
	/* Ex: the VP set {2} in the variable header, then one page. */
	uint64_t ex[] = { 0x1000, 0, 0, 1, 1u << 2, 0x5000 };
	put(t, ex, 6);
	cr_assert_eq(call(t, 0, 0x14 | VARHEAD(1) | REPS(1), IN_GPA, 0), REPS(1));
	cr_assert_eq(atomic_load(&t->cpu[2].tlb_flush_req), 2);
	cr_assert_eq(atomic_load(&t->cpu[1].tlb_flush_req), 3, "the all-processors flush only");
	/* Unknown flags, fast input. */
	uint64_t bad[] = { 0, 1u << 7, 2 };
	put(t, bad, 3);
	cr_assert_eq(call(t, 0, 0x02, IN_GPA, 0), 5);
	cr_assert_eq(call(t, 0, 0x02 | FAST, 0, 0), 3);
	struct hv_info info;
	cr_assert(hv_get_info(&t->vm, &info));
	cr_assert_eq(info.hypercalls_by[HV_HC_FLUSH_SPACE], 4);
	cr_assert_eq(info.hypercalls_by[HV_HC_FLUSH_LIST], 1);
	cr_assert_eq(info.hypercalls_by[HV_HC_FLUSH_LIST_EX], 1);
	free_vm(t);
}

/* A running vCPU that reaches its next boundary late. */
struct target {
	struct vcpu *v;
	atomic_bool flushed;
};

static void *target_thread(void *opaque)
{
	struct target *g = opaque;
	while (!(atomic_load(&g->v->events) & VCPU_EVT_TLB_FLUSH))
		sched_yield();
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	atomic_store(&g->flushed, true);
	vcpu_tlb_flush_service(g->v);
	return NULL;
}

Test(hypercall, flush_returns_only_after_a_running_target_flushed)
{
	struct tvm *t = new_vm(2, NULL);
	struct target g = { .v = &t->cpu[1] };
	atomic_store(&t->cpu[1].in_run, true);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, target_thread, &g), 0);
	uint64_t in[] = { 0, 0, 1u << 1 };
	put(t, in, 3);
	cr_assert_eq(call(t, 0, 0x02, IN_GPA, 0), 0);
	cr_assert(atomic_load(&g.flushed), "returned before the target flushed");
	pthread_join(th, NULL);
	cr_assert_eq(atomic_load(&t->cpu[1].tlb_flush_done), 1);
	/* A target outside its engine is not waited for. */
	atomic_store(&t->cpu[1].in_run, false);
	cr_assert_eq(call(t, 0, 0x02, IN_GPA, 0), 0);
	cr_assert_eq(atomic_load(&t->cpu[1].tlb_flush_done), 1, "served when it runs again");
	free_vm(t);
}

/* HvCallSignalEvent reaches the owner of the connection id, with the
 * caller and the flag number; an id nobody owns fails (TLFS 11.10.3). */
static int owner_calls, owner_flag;
static uint32_t owner_conn;

static int owner(void *opaque, struct vcpu *caller, uint32_t conn_id, unsigned flag)
{
	cr_assert_eq(caller->id, 1);
	owner_calls += *(int *)opaque;
	owner_conn = conn_id;
	owner_flag = (int)flag;
	return 0;
}

Test(hypercall, signal_event_goes_to_the_connection_owner)
{
	struct tvm *t = new_vm(2, NULL);
	int one = 1;
	cr_assert_eq(hv_add_event_connections(&t->vm, 0x200, 4, owner, &one), 0);
	cr_assert_eq(hv_add_event_connections(&t->vm, 0x203, 1, owner, &one), -EBUSY, "ids taken");
	cr_assert_eq(hv_add_event_connections(&t->vm, 0xffffffff, 2, owner, &one), -EINVAL, "wraps");
	cr_assert_eq(call(t, 1, 0x5d | FAST, 0x203 | 17ull << 32, 0), 0);
	cr_assert_eq(owner_calls, 1);
	cr_assert_eq(owner_conn, 0x203);
	cr_assert_eq(owner_flag, 17);
	uint64_t in = 0x201 | 2047ull << 32;
	put(t, &in, 1);
	cr_assert_eq(call(t, 1, 0x5d, IN_GPA, 0), 0);
	cr_assert_eq(owner_calls, 2);
	cr_assert_eq(owner_flag, 2047);
	cr_assert_eq(call(t, 1, 0x5d | FAST, 0x204, 0), 0x12, "unowned: HV_STATUS_INVALID_CONNECTION_ID");
	cr_assert_eq(call(t, 1, 0x5d | FAST, 0x1ff, 0), 0x12);
	cr_assert_eq(call(t, 1, 0x5d | FAST, 0x200 | 2048ull << 32, 0), 5, "flag out of the page");
	cr_assert_eq(call(t, 1, 0x5d, IN_GPA + 4, 0), 4, "unaligned input");
	cr_assert_eq(owner_calls, 2);
	free_vm(t);
	/* Without the vmbus feature (CPUID then offers no SignalEvents
	 * privilege) the call does not exist. */
	t = new_vm(2, "-vmbus");
	cr_assert_eq(hv_add_event_connections(&t->vm, 0x200, 4, owner, &one), 0);
	cr_assert_eq(call(t, 1, 0x5d | FAST, 0x200, 0), 2);
	cr_assert_eq(owner_calls, 2);
	free_vm(t);
}

/* VMBus owns its channels' connection ids through the same registry:
 * a signal to a channel's id reaches the bus, one to a relid it does
 * not have is an invalid id, and nobody else can take its range. */
Test(hypercall, signal_event_reaches_vmbus_channels)
{
	struct tvm *t = new_vm(1, NULL);
	cr_assert_eq(hv_vmbus_create(&t->vm, NULL, NULL), 0);
	int one = 1;
	cr_assert_eq(hv_add_event_connections(&t->vm, 0x10010, 1, owner, &one), -EBUSY);
	cr_assert_eq(call(t, 0, 0x5d | FAST, 0x10001, 0), 0, "the shutdown service's channel (relid 1)");
	cr_assert_eq(call(t, 0, 0x5d | FAST, 0x10000 + 99, 0), 0x12, "no relid 99");
	cr_assert_eq(call(t, 0, 0x5d | FAST, 0x10000, 0), 0x12, "below the channels' range");
	struct hv_vmbus_info info;
	cr_assert(hv_vmbus_get_info(&t->vm, &info));
	cr_assert_eq(info.signals, 1);
	free_vm(t);
}

/* What a flush call asks its targets to drop (TLFS 4.5): the address
 * space by its CR3 page, the pages of a list, every space with
 * HV_FLUSH_ALL_VIRTUAL_ADDRESS_SPACES, and the whole space for a list
 * too long to go page by page. */
Test(hypercall, flush_ranges_follow_the_space_flags_and_list)
{
	struct vcpu_tlb_range r[HV_FLUSH_RANGES_MAX];
	/* A space flush of Linux's mm: non-global only; PCID bits dropped. */
	cr_assert_eq(hv_flush_ranges(0x1234005, 4, NULL, 0, r), 1);
	cr_assert_eq(r[0].space, 0x1234000);
	cr_assert_eq(r[0].count, 0);
	cr_assert(r[0].non_global);
	/* A list: one page, then 16 (15 more in the low bits). */
	uint64_t gva[] = { 0x7000, 0x40000f };
	cr_assert_eq(hv_flush_ranges(0x1000, 0, gva, 2, r), 2);
	cr_assert_eq(r[0].page, 0x7000);
	cr_assert_eq(r[0].count, 1);
	cr_assert_eq(r[1].page, 0x400000);
	cr_assert_eq(r[1].count, 16);
	cr_assert(!r[1].non_global);
	cr_assert_eq(r[1].space, 0x1000);
	/* Every address space. */
	cr_assert_eq(hv_flush_ranges(0x1000, 2, gva, 1, r), 1);
	cr_assert_eq(r[0].space, VCPU_TLB_ALL_SPACES);
	cr_assert_eq(r[0].count, 1);
	/* Too many pages, or too many ranges: the whole space. */
	uint64_t big[] = { 0x400fff };
	cr_assert_eq(hv_flush_ranges(0x1000, 0, big, 1, r), 1);
	cr_assert_eq(r[0].count, 0);
	cr_assert_eq(r[0].space, 0x1000);
	uint64_t many[HV_FLUSH_RANGES_MAX + 1] = { 0 };
	cr_assert_eq(hv_flush_ranges(0x1000, 0, many, HV_FLUSH_RANGES_MAX + 1, r), 1);
	cr_assert_eq(r[0].count, 0);
}

/* The list's pages reach the target's queue (from the rep start), and a
 * queue that overflows asks for everything. */
Test(hypercall, flush_list_queues_its_pages_at_the_target)
{
	struct tvm *t = new_vm(2, NULL);
	uint64_t in[] = { 0x5000, 0, 1u << 1, 0x7000, 0x9003 };
	put(t, in, 5);
	cr_assert_eq(call(t, 0, 0x03 | REPS(2) | (1ull << 48), IN_GPA, 0), REPS(2));
	struct vcpu_tlb_queue *q = &t->cpu[1].tlb_queue;
	cr_assert(!q->all);
	cr_assert_eq(q->n, 1, "rep 0 was done before");
	cr_assert_eq(q->r[0].page, 0x9000);
	cr_assert_eq(q->r[0].count, 4);
	cr_assert_eq(q->r[0].space, 0x5000);
	/* No rep left: nothing asked. */
	cr_assert_eq(call(t, 0, 0x03 | REPS(2) | (2ull << 48), IN_GPA, 0), REPS(2));
	cr_assert_eq(q->n, 1);
	cr_assert_eq(atomic_load(&t->cpu[1].tlb_flush_req), 1);
	for (unsigned i = 0; i < VCPU_TLB_QUEUE; i++)
		cr_assert_eq(call(t, 0, 0x03 | REPS(2), IN_GPA, 0), REPS(2));
	cr_assert(q->all, "overflowed");
	vcpu_tlb_flush_service(&t->cpu[1]);
	cr_assert(!q->all && q->n == 0);
	cr_assert_eq(atomic_load(&t->cpu[1].tlb_flush_done), VCPU_TLB_QUEUE + 1);
	free_vm(t);
}
