/* The handler half of the opcode table: per opcode of each map (the rows
 * of opcodes.c, same indices), the handler that executes it and the forms
 * specialised to its operand kind and size.  Constant data: the decoder
 * (decode.c, emu_handler_find) reads it, nothing fills it at run time.
 *
 * A row names a generic handler (fn) for every mandatory prefix and
 * ModRM.reg, and may narrow it: per mandatory prefix (mp, the SSE rows),
 * per ModRM.reg (GROUP: the members of a group, SDM vol. 2D table A-6),
 * or per both (MP_GROUP).  The most specific entry wins; a row or member
 * without any executes as #UD.  Forms (FORMS / a group's forms) replace
 * the generic handler they belong to for an instruction without LOCK
 * whose operand is a register or memory of the given size
 * (docs/architecture.md "Specialized handlers"); each family defines its
 * forms next to the handler they specialise.
 *
 * The handlers live in their families: core/int_*.c (general-purpose,
 * declared in core.h), system/sys_insn.c (sys.h), the fpu files (fpu.h).
 * tests/unit/cpu/emu/core/test_decode.c checks that every row with a
 * format has a handler or is #UD on purpose, and that every form agrees
 * with its generic handler. */
#include "cpu/emu/core/opcodes.h"

#include "cpu/emu/core/core.h"
#include "cpu/emu/fpu/fpu.h"
#include "cpu/emu/system/sys.h"

#define MP(...) .mp = { __VA_ARGS__ }
#define FORMS(f) .forms = &(f)
#define GROUP(...) .grp = &(const struct emu_impl_group){ __VA_ARGS__ }
#define MP_GROUP(...) .mp_grp = &(const struct emu_impl_mp_group){ { __VA_ARGS__ } }
/* SSE rows: the same handler without prefix and with 66 (ps/pd, MMX/XMM). */
#define PS_PD(f) MP([EMU_MP_NONE] = (f), [EMU_MP_66] = (f))
/* MMX without prefix, XMM with 66 (SDM vol. 2D, table A-3): the
 * operation itself is simd_int.c's, per opcode. */
#define MMX_XMM MP([EMU_MP_NONE] = simd_int_mmx, [EMU_MP_66] = simd_int_xmm)
#define MMX_FX(fx) MP([EMU_MP_NONE] = simd_int_mmx, [EMU_MP_66] = (fx))
#define XMM_66(f) MP([EMU_MP_66] = (f))
/* SSE floating point: the host operation and the memory operand size
 * per prefix are sse_host.c's. */
#define FP_ALL MP(sse_fp_rm, sse_fp_rm, sse_fp_rm, sse_fp_rm)

/* ADD..CMP (00-3D): r/m,r and r,r/m byte and full size, then AL/rAX,imm. */
#define ALU_ROWS(base, op) \
	[(base) + 0] = { h_alu_rm_r }, [(base) + 1] = { h_alu_rm_r, FORMS(int_alu_rm_r_forms[op]) }, \
	[(base) + 2] = { h_alu_r_rm }, [(base) + 3] = { h_alu_r_rm, FORMS(int_alu_r_rm_forms[op]) }, \
	[(base) + 4] = { h_alu_acc_imm }, [(base) + 5] = { h_alu_acc_imm }
/* 81 and 83 /n: op r/m, imm with a form per operation. */
#define GRP1_FORMS \
	GROUP(.forms = { &int_alu_ri_forms[0], &int_alu_ri_forms[1], &int_alu_ri_forms[2], &int_alu_ri_forms[3], \
			 &int_alu_ri_forms[4], &int_alu_ri_forms[5], &int_alu_ri_forms[6], &int_alu_ri_forms[7] })
/* Jcc rel8 / rel16/32 with one form per condition. */
#define JCC_ROWS(base) \
	[(base) + 0x0] = { h_jcc, FORMS(int_jcc_forms[0x0]) }, [(base) + 0x1] = { h_jcc, FORMS(int_jcc_forms[0x1]) }, \
	[(base) + 0x2] = { h_jcc, FORMS(int_jcc_forms[0x2]) }, [(base) + 0x3] = { h_jcc, FORMS(int_jcc_forms[0x3]) }, \
	[(base) + 0x4] = { h_jcc, FORMS(int_jcc_forms[0x4]) }, [(base) + 0x5] = { h_jcc, FORMS(int_jcc_forms[0x5]) }, \
	[(base) + 0x6] = { h_jcc, FORMS(int_jcc_forms[0x6]) }, [(base) + 0x7] = { h_jcc, FORMS(int_jcc_forms[0x7]) }, \
	[(base) + 0x8] = { h_jcc, FORMS(int_jcc_forms[0x8]) }, [(base) + 0x9] = { h_jcc, FORMS(int_jcc_forms[0x9]) }, \
	[(base) + 0xa] = { h_jcc, FORMS(int_jcc_forms[0xa]) }, [(base) + 0xb] = { h_jcc, FORMS(int_jcc_forms[0xb]) }, \
	[(base) + 0xc] = { h_jcc, FORMS(int_jcc_forms[0xc]) }, [(base) + 0xd] = { h_jcc, FORMS(int_jcc_forms[0xd]) }, \
	[(base) + 0xe] = { h_jcc, FORMS(int_jcc_forms[0xe]) }, [(base) + 0xf] = { h_jcc, FORMS(int_jcc_forms[0xf]) }

const struct emu_impl emu_impls[EMU_MAP_COUNT][256] = {
	[EMU_MAP_1B] = {
		ALU_ROWS(0x00, 0), ALU_ROWS(0x08, 1), ALU_ROWS(0x10, 2), ALU_ROWS(0x18, 3),
		ALU_ROWS(0x20, 4), ALU_ROWS(0x28, 5), ALU_ROWS(0x30, 6), ALU_ROWS(0x38, 7),
		[0x06] = { h_push_sreg }, [0x07] = { h_pop_es }, [0x0e] = { h_push_sreg },
		[0x16] = { h_push_sreg }, [0x17] = { h_pop_ss }, [0x1e] = { h_push_sreg }, [0x1f] = { h_pop_ds },
		[0x27] = { h_daa_das }, [0x2f] = { h_daa_das }, [0x37] = { h_aaa_aas }, [0x3f] = { h_aaa_aas },
		[0x40 ... 0x4f] = { h_incdec_r },
		[0x50 ... 0x57] = { h_push_r, FORMS(int_push_r64_forms) },
		[0x58 ... 0x5f] = { h_pop_r, FORMS(int_pop_r64_forms) },
		[0x60] = { h_pusha }, [0x61] = { h_popa }, [0x62] = { h_bound }, [0x63] = { h_movsxd },
		[0x68] = { h_push_imm }, [0x69] = { h_imul_r_rm_imm }, [0x6a] = { h_push_imm }, [0x6b] = { h_imul_r_rm_imm },
		[0x6c ... 0x6d] = { h_ins }, [0x6e ... 0x6f] = { h_outs },
		JCC_ROWS(0x70),
		[0x80] = { h_grp1 }, [0x81] = { h_grp1, GRP1_FORMS }, [0x82] = { h_grp1 }, [0x83] = { h_grp1, GRP1_FORMS },
		[0x84] = { h_test_rm_r }, [0x85] = { h_test_rm_r, FORMS(int_test_rr_forms) },
		[0x86 ... 0x87] = { h_xchg_rm_r },
		[0x88] = { h_mov_rm_r }, [0x89] = { h_mov_rm_r, FORMS(int_mov_store_forms) },
		[0x8a] = { h_mov_r_rm }, [0x8b] = { h_mov_r_rm, FORMS(int_mov_load_forms) },
		[0x8c] = { h_mov_rm_sreg }, [0x8d] = { h_lea, FORMS(int_lea_forms) },
		[0x8e] = { h_mov_sreg }, [0x8f] = { GROUP(.reg = { [0] = h_pop_rm }) },
		[0x90 ... 0x97] = { h_xchg_ax },
		[0x98] = { h_cbw }, [0x99] = { h_cwd }, [0x9a] = { h_call_far_ptr }, [0x9b] = { x87_fwait },
		[0x9c] = { h_pushf }, [0x9d] = { h_popf }, [0x9e] = { h_sahf }, [0x9f] = { h_lahf },
		[0xa0 ... 0xa3] = { h_mov_moffs },
		[0xa4 ... 0xa5] = { h_movs }, [0xa6 ... 0xa7] = { h_cmps }, [0xa8 ... 0xa9] = { h_test_acc_imm },
		[0xaa ... 0xab] = { h_stos }, [0xac ... 0xad] = { h_lods }, [0xae ... 0xaf] = { h_scas },
		[0xb0 ... 0xbf] = { h_mov_r_imm },
		[0xc0] = { h_grp2 },
		[0xc1] = { h_grp2, GROUP(.forms = { [0] = &int_rol_ri_forms, [1] = &int_ror_ri_forms,
						    [4] = &int_shl_ri_forms, [5] = &int_shr_ri_forms,
						    [6] = &int_shl_ri_forms, [7] = &int_sar_ri_forms }) },
		[0xc2] = { h_ret }, [0xc3] = { h_ret, FORMS(int_ret64_forms) },
		[0xc4] = { h_les }, [0xc5] = { h_lds },
		[0xc6 ... 0xc7] = { GROUP(.reg = { [0] = h_mov_rm_imm }) },
		[0xc8] = { h_enter }, [0xc9] = { h_leave }, [0xca ... 0xcb] = { h_retf },
		[0xcc] = { h_int3 }, [0xcd] = { h_int_n }, [0xce] = { h_into }, [0xcf] = { h_iret },
		[0xd0 ... 0xd3] = { h_grp2 },
		[0xd4] = { h_aam }, [0xd5] = { h_aad }, [0xd6] = { h_salc }, [0xd7] = { h_xlat },
		[0xd8] = { x87_d8 }, [0xd9] = { x87_d9 }, [0xda] = { x87_da }, [0xdb] = { x87_db },
		[0xdc] = { x87_dc }, [0xdd] = { x87_dd }, [0xde] = { x87_de }, [0xdf] = { x87_df },
		[0xe0 ... 0xe3] = { h_loop },
		[0xe4 ... 0xe5] = { h_in }, [0xe6 ... 0xe7] = { h_out },
		[0xe8] = { h_call_rel, FORMS(int_call_rel64_forms) }, [0xe9] = { h_jmp_rel },
		[0xea] = { h_jmp_far_ptr }, [0xeb] = { h_jmp_rel },
		[0xec ... 0xed] = { h_in }, [0xee ... 0xef] = { h_out },
		[0xf1] = { h_int1 }, [0xf4] = { h_hlt }, [0xf5] = { h_flagop },
		[0xf6 ... 0xf7] = { GROUP(.reg = { h_test_rm_imm, h_test_rm_imm, h_not, h_neg, h_mul, h_mul, h_div, h_div }) },
		[0xf8 ... 0xf9] = { h_flagop }, [0xfa] = { h_cli }, [0xfb] = { h_sti }, [0xfc ... 0xfd] = { h_flagop },
		[0xfe] = { GROUP(.reg = { h_inc_rm, h_dec_rm }) },
		[0xff] = { GROUP(.reg = { h_inc_rm, h_dec_rm, h_call_rm, h_call_far_mem, h_jmp_rm, h_jmp_far_mem, h_push_rm }) },
	},
	[EMU_MAP_0F] = {
		[0x00] = { h_grp6 },
		[0x01] = { GROUP(.reg = { h_grp7_0, h_grp7_1, h_grp7_2, h_grp7_3, h_smsw, NULL, h_lmsw, h_grp7_7 }) },
		[0x02] = { h_lar }, [0x03] = { h_lsl }, [0x05] = { h_syscall }, [0x06] = { h_clts }, [0x07] = { h_sysret },
		[0x08 ... 0x09] = { h_wbinvd }, [0x0d] = { h_nop },  /* PREFETCHW */
		[0x10] = { MP(sse_mov_load_u, sse_mov_load_u, sse_mov_scalar, sse_mov_scalar) },
		[0x11] = { MP(sse_mov_store_u, sse_mov_store_u, sse_mov_scalar, sse_mov_scalar) },
		[0x12] = { MP(sse_mov_half, sse_mov_half, sse_mov_half, sse_mov_half) },
		[0x13] = { PS_PD(sse_mov_half) }, [0x14 ... 0x15] = { PS_PD(sse_fp_shuffle) },
		[0x16] = { MP(sse_mov_half, sse_mov_half, sse_mov_half) }, [0x17] = { PS_PD(sse_mov_half) },
		[0x18] = { sse_hint_nop },             /* PREFETCHh */
		[0x19 ... 0x1f] = { h_nop },           /* reserved-NOP hints (SDM vol. 2B, NOP) */
		[0x20] = { h_mov_from_cr }, [0x21] = { h_mov_from_dr }, [0x22] = { h_mov_to_cr }, [0x23] = { h_mov_to_dr },
		[0x28] = { PS_PD(sse_mov_load_a) }, [0x29] = { PS_PD(sse_mov_store_a) },
		[0x2a] = { MP(sse_cvt_mmx, sse_cvt_mmx, sse_cvtsi2s, sse_cvtsi2s) }, [0x2b] = { PS_PD(sse_mov_store_nt) },
		[0x2c ... 0x2d] = { MP(sse_cvt_mmx, sse_cvt_mmx, sse_cvts2si, sse_cvts2si) },
		[0x2e ... 0x2f] = { PS_PD(sse_comis) },
		[0x30] = { h_wrmsr }, [0x31] = { h_rdtsc }, [0x32] = { h_rdmsr }, [0x33] = { h_rdpmc },
		[0x34] = { h_sysenter }, [0x35] = { h_sysexit },
		[0x40 ... 0x4f] = { h_cmov },
		[0x50] = { PS_PD(sse_fp_movmsk) }, [0x51] = { FP_ALL },
		[0x52 ... 0x53] = { MP([EMU_MP_NONE] = sse_fp_rm, [EMU_MP_F3] = sse_fp_rm) },
		[0x54 ... 0x57] = { PS_PD(sse_fp_logic) },
		[0x58 ... 0x5a] = { FP_ALL }, [0x5b] = { MP(sse_fp_rm, sse_fp_rm, sse_fp_rm) }, [0x5c ... 0x5f] = { FP_ALL },
		[0x60] = { MMX_FX(simd_fx_punpcklbw) }, [0x61 ... 0x6b] = { MMX_XMM },
		[0x6c ... 0x6d] = { XMM_66(simd_int_xmm) }, [0x6e] = { PS_PD(sse_mov_d_to_vec) },
		[0x6f] = { MP(sse_mov_mmx_q, sse_mov_load_a, sse_mov_load_u) },
		[0x70] = { MP(simd_int_mmx, simd_int_xmm, simd_int_xmm, simd_int_xmm) },
		[0x71 ... 0x73] = { PS_PD(simd_shift_imm) },
		[0x74] = { MMX_FX(simd_fx_pcmpeqb) }, [0x75] = { MMX_FX(simd_fx_pcmpeqw) }, [0x76] = { MMX_FX(simd_fx_pcmpeqd) },
		[0x77] = { MP([EMU_MP_NONE] = sse_emms) },
		[0x7c ... 0x7d] = { MP([EMU_MP_66] = sse_fp_rm, [EMU_MP_F2] = sse_fp_rm) },
		[0x7e] = { MP(sse_mov_d_from_vec, sse_mov_d_from_vec, sse_mov_d_from_vec) },
		[0x7f] = { MP(sse_mov_mmx_q, sse_mov_store_a, sse_mov_store_u) },
		JCC_ROWS(0x80),
		[0x90 ... 0x9f] = { h_setcc },
		[0xa0] = { h_push_sreg }, [0xa1] = { h_pop_fs }, [0xa2] = { h_cpuid }, [0xa3] = { h_bt_r },
		[0xa4 ... 0xa5] = { h_shxd }, [0xa8] = { h_push_sreg }, [0xa9] = { h_pop_gs }, [0xab] = { h_bt_r },
		[0xac ... 0xad] = { h_shxd },
		/* Group 15: FXSAVE..CLFLUSH; 66: CLWB/CLFLUSHOPT; F3 /0../3: RD/WR FS/GS base. */
		[0xae] = { MP([EMU_MP_NONE] = xsave_grp15),
			   MP_GROUP([EMU_MP_66] = { [6] = xsave_grp15_66, [7] = xsave_grp15_66 },
				    [EMU_MP_F3] = { h_fsgsbase, h_fsgsbase, h_fsgsbase, h_fsgsbase }) },
		[0xaf] = { h_imul_r_rm },
		[0xb0 ... 0xb1] = { h_cmpxchg }, [0xb2] = { h_lss }, [0xb3] = { h_bt_r }, [0xb4] = { h_lfs }, [0xb5] = { h_lgs },
		[0xb6] = { h_movzx, FORMS(int_movzx_b_forms) }, [0xb7] = { h_movzx, FORMS(int_movzx_w_forms) },
		[0xb8] = { MP([EMU_MP_F3] = h_popcnt) },
		[0xba] = { GROUP(.reg = { [4] = h_bt_imm, [5] = h_bt_imm, [6] = h_bt_imm, [7] = h_bt_imm }) },
		[0xbb] = { h_bt_r }, [0xbc] = { h_bsf_bsr },
		/* LZCNT (ABM) is advertised; F3 0F BC is BSF without BMI1 (int_bit.c). */
		[0xbd] = { h_bsf_bsr, MP([EMU_MP_F3] = h_tzcnt_lzcnt) },
		[0xbe ... 0xbf] = { h_movzx },
		[0xc0 ... 0xc1] = { h_xadd }, [0xc2] = { FP_ALL }, [0xc3] = { MP([EMU_MP_NONE] = sse_movnti) },
		[0xc4 ... 0xc5] = { PS_PD(sse_pinsrw_pextrw) }, [0xc6] = { PS_PD(sse_fp_shuffle) },
		/* Group 9: CMPXCHG8B/16B; RDRAND, RDSEED; F3 /7: RDPID. */
		[0xc7] = { MP_GROUP([EMU_MP_NONE] = { [1] = h_cmpxchg8b, [6] = h_rdrand, [7] = h_rdrand },
				    [EMU_MP_66] = { [1] = h_cmpxchg8b, [6] = h_rdrand, [7] = h_rdrand },
				    [EMU_MP_F3] = { [7] = h_rdpid }) },
		[0xc8 ... 0xcf] = { h_bswap },
		[0xd0] = { MP([EMU_MP_66] = sse_fp_rm, [EMU_MP_F2] = sse_fp_rm) },
		[0xd1 ... 0xd3] = { MMX_XMM }, [0xd4] = { MMX_FX(simd_fx_paddq) }, [0xd5] = { MMX_XMM },
		[0xd6] = { MP([EMU_MP_66] = sse_mov_d6, [EMU_MP_F3] = sse_mov_d6, [EMU_MP_F2] = sse_mov_d6) },
		[0xd7] = { PS_PD(sse_pmovmskb) },
		[0xd8 ... 0xd9] = { MMX_XMM }, [0xda] = { MMX_FX(simd_fx_pminub) }, [0xdb] = { MMX_FX(simd_fx_pand) },
		[0xdc ... 0xdd] = { MMX_XMM }, [0xde] = { MMX_FX(simd_fx_pmaxub) }, [0xdf] = { MMX_FX(simd_fx_pandn) },
		[0xe0 ... 0xe5] = { MMX_XMM },
		[0xe6] = { MP([EMU_MP_66] = sse_fp_rm, [EMU_MP_F3] = sse_fp_rm, [EMU_MP_F2] = sse_fp_rm) },
		[0xe7] = { MP(sse_mov_mmx_q, sse_mov_store_nt) },
		[0xe8 ... 0xea] = { MMX_XMM }, [0xeb] = { MMX_FX(simd_fx_por) }, [0xec ... 0xee] = { MMX_XMM },
		[0xef] = { MMX_FX(simd_fx_pxor) },
		[0xf0] = { MP([EMU_MP_F2] = sse_mov_load_mem_only) },  /* LDDQU */
		[0xf1 ... 0xf6] = { MMX_XMM }, [0xf7] = { PS_PD(sse_maskmov) },
		[0xf8] = { MMX_FX(simd_fx_psubb) }, [0xf9 ... 0xfb] = { MMX_XMM }, [0xfc] = { MMX_FX(simd_fx_paddb) },
		[0xfd ... 0xfe] = { MMX_XMM },
	},
	[EMU_MAP_0F38] = {
		[0x00 ... 0x0b] = { MMX_XMM },          /* SSSE3 */
		[0x10] = { XMM_66(simd_blendv) }, [0x14 ... 0x15] = { XMM_66(simd_blendv) },
		[0x17] = { XMM_66(simd_ptest) },
		[0x1c ... 0x1e] = { MMX_XMM },
		[0x20 ... 0x25] = { XMM_66(simd_pmovx) },
		[0x28 ... 0x29] = { XMM_66(simd_int_xmm) }, [0x2a] = { XMM_66(sse_mov_load_mem_only) },  /* MOVNTDQA */
		[0x2b] = { XMM_66(simd_int_xmm) },
		[0x30 ... 0x35] = { XMM_66(simd_pmovx) },
		[0x37 ... 0x41] = { XMM_66(simd_int_xmm) },
		[0x82] = { XMM_66(h_invpcid) },
		[0xf0 ... 0xf1] = { MP([EMU_MP_NONE] = h_movbe, [EMU_MP_66] = h_movbe, [EMU_MP_F2] = h_crc32) },
	},
	[EMU_MAP_0F3A] = {
		[0x08 ... 0x0b] = { XMM_66(sse_fp_rm) },
		[0x0c ... 0x0e] = { XMM_66(simd_int_xmm) }, [0x0f] = { MMX_XMM },
		[0x14 ... 0x17] = { XMM_66(sse_pextr) },
		[0x20 ... 0x22] = { XMM_66(sse_pinsr) },
		[0x40 ... 0x41] = { XMM_66(sse_fp_rm) }, [0x42] = { XMM_66(simd_int_xmm) },
		[0x60 ... 0x63] = { XMM_66(sse_pcmpstr) },
	},
};
