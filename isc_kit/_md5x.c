/* Multi-buffer MD5 (RFC 1321): many independent messages hashed at once, one per 32-bit SIMD lane.
 *
 * md5_many(buffers) -> list of 16-byte digests, in order. Buffers are pinned (buffer protocol,
 * C-contiguous), the GIL is released while hashing. Each lane of a 512-bit (16 lanes) or 256-bit
 * (8 lanes) register runs one message; when a lane's message ends, the lane takes the next one.
 * The CPU is asked at run time which kernel it can run (AVX-512F, AVX2, else portable scalar C);
 * target attributes let this file compile with plain flags on any x86-64 compiler.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define MD5X_X86 1
#include <immintrin.h>
#else
#define MD5X_X86 0
#endif

#define MD5_IV0 0x67452301u
#define MD5_IV1 0xefcdab89u
#define MD5_IV2 0x98badcfeu
#define MD5_IV3 0x10325476u

/* The 64 steps of RFC 1321 section 3.4: function, registers, message word, shift, T[i] = floor(2^32 |sin(i)|). */
#define MD5_STEPS \
    STEP(F, a, b, c, d,  0,  7, 0xd76aa478) \
    STEP(F, d, a, b, c,  1, 12, 0xe8c7b756) \
    STEP(F, c, d, a, b,  2, 17, 0x242070db) \
    STEP(F, b, c, d, a,  3, 22, 0xc1bdceee) \
    STEP(F, a, b, c, d,  4,  7, 0xf57c0faf) \
    STEP(F, d, a, b, c,  5, 12, 0x4787c62a) \
    STEP(F, c, d, a, b,  6, 17, 0xa8304613) \
    STEP(F, b, c, d, a,  7, 22, 0xfd469501) \
    STEP(F, a, b, c, d,  8,  7, 0x698098d8) \
    STEP(F, d, a, b, c,  9, 12, 0x8b44f7af) \
    STEP(F, c, d, a, b, 10, 17, 0xffff5bb1) \
    STEP(F, b, c, d, a, 11, 22, 0x895cd7be) \
    STEP(F, a, b, c, d, 12,  7, 0x6b901122) \
    STEP(F, d, a, b, c, 13, 12, 0xfd987193) \
    STEP(F, c, d, a, b, 14, 17, 0xa679438e) \
    STEP(F, b, c, d, a, 15, 22, 0x49b40821) \
    STEP(G, a, b, c, d,  1,  5, 0xf61e2562) \
    STEP(G, d, a, b, c,  6,  9, 0xc040b340) \
    STEP(G, c, d, a, b, 11, 14, 0x265e5a51) \
    STEP(G, b, c, d, a,  0, 20, 0xe9b6c7aa) \
    STEP(G, a, b, c, d,  5,  5, 0xd62f105d) \
    STEP(G, d, a, b, c, 10,  9, 0x02441453) \
    STEP(G, c, d, a, b, 15, 14, 0xd8a1e681) \
    STEP(G, b, c, d, a,  4, 20, 0xe7d3fbc8) \
    STEP(G, a, b, c, d,  9,  5, 0x21e1cde6) \
    STEP(G, d, a, b, c, 14,  9, 0xc33707d6) \
    STEP(G, c, d, a, b,  3, 14, 0xf4d50d87) \
    STEP(G, b, c, d, a,  8, 20, 0x455a14ed) \
    STEP(G, a, b, c, d, 13,  5, 0xa9e3e905) \
    STEP(G, d, a, b, c,  2,  9, 0xfcefa3f8) \
    STEP(G, c, d, a, b,  7, 14, 0x676f02d9) \
    STEP(G, b, c, d, a, 12, 20, 0x8d2a4c8a) \
    STEP(H, a, b, c, d,  5,  4, 0xfffa3942) \
    STEP(H, d, a, b, c,  8, 11, 0x8771f681) \
    STEP(H, c, d, a, b, 11, 16, 0x6d9d6122) \
    STEP(H, b, c, d, a, 14, 23, 0xfde5380c) \
    STEP(H, a, b, c, d,  1,  4, 0xa4beea44) \
    STEP(H, d, a, b, c,  4, 11, 0x4bdecfa9) \
    STEP(H, c, d, a, b,  7, 16, 0xf6bb4b60) \
    STEP(H, b, c, d, a, 10, 23, 0xbebfbc70) \
    STEP(H, a, b, c, d, 13,  4, 0x289b7ec6) \
    STEP(H, d, a, b, c,  0, 11, 0xeaa127fa) \
    STEP(H, c, d, a, b,  3, 16, 0xd4ef3085) \
    STEP(H, b, c, d, a,  6, 23, 0x04881d05) \
    STEP(H, a, b, c, d,  9,  4, 0xd9d4d039) \
    STEP(H, d, a, b, c, 12, 11, 0xe6db99e5) \
    STEP(H, c, d, a, b, 15, 16, 0x1fa27cf8) \
    STEP(H, b, c, d, a,  2, 23, 0xc4ac5665) \
    STEP(I, a, b, c, d,  0,  6, 0xf4292244) \
    STEP(I, d, a, b, c,  7, 10, 0x432aff97) \
    STEP(I, c, d, a, b, 14, 15, 0xab9423a7) \
    STEP(I, b, c, d, a,  5, 21, 0xfc93a039) \
    STEP(I, a, b, c, d, 12,  6, 0x655b59c3) \
    STEP(I, d, a, b, c,  3, 10, 0x8f0ccc92) \
    STEP(I, c, d, a, b, 10, 15, 0xffeff47d) \
    STEP(I, b, c, d, a,  1, 21, 0x85845dd1) \
    STEP(I, a, b, c, d,  8,  6, 0x6fa87e4f) \
    STEP(I, d, a, b, c, 15, 10, 0xfe2ce6e0) \
    STEP(I, c, d, a, b,  6, 15, 0xa3014314) \
    STEP(I, b, c, d, a, 13, 21, 0x4e0811a1) \
    STEP(I, a, b, c, d,  4,  6, 0xf7537e82) \
    STEP(I, d, a, b, c, 11, 10, 0xbd3af235) \
    STEP(I, c, d, a, b,  2, 15, 0x2ad7d2bb) \
    STEP(I, b, c, d, a,  9, 21, 0xeb86d391)

/* ------------------------------------------------------------------ scalar ------------------------------------------------------------------ */

static inline uint32_t load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void store_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

#define S_ROL(x, s) (((x) << (s)) | ((x) >> (32 - (s))))
#define S_F(b, c, d) ((d) ^ ((b) & ((c) ^ (d))))
#define S_G(b, c, d) ((c) ^ ((d) & ((b) ^ (c))))
#define S_H(b, c, d) ((b) ^ (c) ^ (d))
#define S_I(b, c, d) ((c) ^ ((b) | ~(d)))
#define STEP(FN, a, b, c, d, k, s, t) a = b + S_ROL(S_##FN(b, c, d) + (a + M[k] + (uint32_t)(t)), s);

/* Compress n consecutive 64-byte blocks into one state. */
static void md5_blocks_scalar(uint32_t st[4], const uint8_t *p, size_t n)
{
    uint32_t M[16];
    for (; n > 0; n--, p += 64) {
        for (int i = 0; i < 16; i++)
            M[i] = load_le32(p + 4 * i);
        uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
        MD5_STEPS
        st[0] += a;
        st[1] += b;
        st[2] += c;
        st[3] += d;
    }
}
#undef STEP

/* The last 1 or 2 blocks of a message: its last len % 64 bytes, 0x80, zeros, the length in bits (LE 64). */
static int md5_tail(uint8_t tail[128], const uint8_t *data, size_t len)
{
    size_t rem = len % 64;
    int blocks = rem < 56 ? 1 : 2;
    uint64_t bits = (uint64_t)len << 3;
    if (rem)
        memcpy(tail, data + (len - rem), rem);
    tail[rem] = 0x80;
    memset(tail + rem + 1, 0, (size_t)blocks * 64 - 8 - rem - 1);
    for (int i = 0; i < 8; i++)
        tail[blocks * 64 - 8 + i] = (uint8_t)(bits >> (8 * i));
    return blocks;
}

static void md5_digest_out(uint8_t out[16], const uint32_t st[4])
{
    for (int i = 0; i < 4; i++)
        store_le32(out + 4 * i, st[i]);
}

static void md5_one_scalar(uint8_t out[16], const uint8_t *data, size_t len)
{
    uint32_t st[4] = {MD5_IV0, MD5_IV1, MD5_IV2, MD5_IV3};
    uint8_t tail[128];
    md5_blocks_scalar(st, data, len / 64);
    int blocks = md5_tail(tail, data, len);
    md5_blocks_scalar(st, tail, (size_t)blocks);
    md5_digest_out(out, st);
}

/* ------------------------------------------------------------------ SIMD kernels ------------------------------------------------------------ */

#define MAX_LANES 16

/* Lane-major state: st[word][lane]. A kernel compresses n blocks for every lane; ptrs[lane] advances 64 per block. */
typedef void (*kernel_fn)(uint32_t st[4][MAX_LANES], const uint8_t *ptrs[MAX_LANES], size_t n);

#if MD5X_X86

/* a + M[k] + T does not wait for b, c, d: only F, one add, the rotate and the last add are on the critical path */
#define STEP(FN, a, b, c, d, k, s, t) a = V_ADD(b, V_ROL(V_ADD(V_##FN(b, c, d), V_ADD(a, V_ADD(M[k], V_SET1(t)))), s));

/* AVX-512F: 16 lanes; native rotate, F/G/H/I in one ternary-logic instruction each. */
#define V_ADD(x, y) _mm512_add_epi32(x, y)
#define V_SET1(t) _mm512_set1_epi32((int)(t))
#define V_ROL(x, s) _mm512_rol_epi32(x, s)
#define V_F(b, c, d) _mm512_ternarylogic_epi32(b, c, d, 0xca)
#define V_G(b, c, d) _mm512_ternarylogic_epi32(b, c, d, 0xe4)
#define V_H(b, c, d) _mm512_ternarylogic_epi32(b, c, d, 0x96)
#define V_I(b, c, d) _mm512_ternarylogic_epi32(b, c, d, 0x39)

__attribute__((target("avx512f"))) static void md5_kernel_avx512(uint32_t st[4][MAX_LANES], const uint8_t *ptrs[MAX_LANES], size_t n)
{
    __m512i A = _mm512_loadu_si512(st[0]), B = _mm512_loadu_si512(st[1]);
    __m512i C = _mm512_loadu_si512(st[2]), D = _mm512_loadu_si512(st[3]);
    for (size_t blk = 0; blk < n; blk++) {
        __m512i r[16], t[16], M[16];
        for (int i = 0; i < 16; i++)
            r[i] = _mm512_loadu_si512(ptrs[i] + 64 * blk);
        /* 16x16 transpose of 32-bit words: row = lane, column = message word. */
        for (int i = 0; i < 16; i += 2) {
            t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
            t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
        }
        /* u[g][j]: rows 4g..4g+3, 128-bit lane L holds word 4L+j */
        __m512i u[4][4];
        for (int g = 0; g < 4; g++) {
            u[g][0] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
            u[g][1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
            u[g][2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
            u[g][3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
        }
        for (int j = 0; j < 4; j++) {
            __m512i v0 = _mm512_shuffle_i32x4(u[0][j], u[1][j], 0x44), v1 = _mm512_shuffle_i32x4(u[0][j], u[1][j], 0xee);
            __m512i v2 = _mm512_shuffle_i32x4(u[2][j], u[3][j], 0x44), v3 = _mm512_shuffle_i32x4(u[2][j], u[3][j], 0xee);
            M[j] = _mm512_shuffle_i32x4(v0, v2, 0x88);
            M[4 + j] = _mm512_shuffle_i32x4(v0, v2, 0xdd);
            M[8 + j] = _mm512_shuffle_i32x4(v1, v3, 0x88);
            M[12 + j] = _mm512_shuffle_i32x4(v1, v3, 0xdd);
        }
        __m512i a = A, b = B, c = C, d = D;
        MD5_STEPS
        A = _mm512_add_epi32(A, a);
        B = _mm512_add_epi32(B, b);
        C = _mm512_add_epi32(C, c);
        D = _mm512_add_epi32(D, d);
    }
    _mm512_storeu_si512(st[0], A);
    _mm512_storeu_si512(st[1], B);
    _mm512_storeu_si512(st[2], C);
    _mm512_storeu_si512(st[3], D);
}

#undef V_ADD
#undef V_SET1
#undef V_ROL
#undef V_F
#undef V_G
#undef V_H
#undef V_I

/* AVX2: 8 lanes; rotate = two shifts and an or, F/G/H/I from and/or/xor. */
#define V_ADD(x, y) _mm256_add_epi32(x, y)
#define V_SET1(t) _mm256_set1_epi32((int)(t))
#define V_ROL(x, s) _mm256_or_si256(_mm256_slli_epi32(x, s), _mm256_srli_epi32(x, 32 - (s)))
#define V_F(b, c, d) _mm256_xor_si256(d, _mm256_and_si256(b, _mm256_xor_si256(c, d)))
#define V_G(b, c, d) _mm256_xor_si256(c, _mm256_and_si256(d, _mm256_xor_si256(b, c)))
#define V_H(b, c, d) _mm256_xor_si256(_mm256_xor_si256(b, c), d)
#define V_I(b, c, d) _mm256_xor_si256(c, _mm256_or_si256(b, _mm256_xor_si256(d, ones)))

__attribute__((target("avx2"))) static void md5_kernel_avx2(uint32_t st[4][MAX_LANES], const uint8_t *ptrs[MAX_LANES], size_t n)
{
    const __m256i ones = _mm256_set1_epi32(-1);
    __m256i A = _mm256_loadu_si256((const __m256i *)st[0]), B = _mm256_loadu_si256((const __m256i *)st[1]);
    __m256i C = _mm256_loadu_si256((const __m256i *)st[2]), D = _mm256_loadu_si256((const __m256i *)st[3]);
    for (size_t blk = 0; blk < n; blk++) {
        __m256i M[16];
        for (int half = 0; half < 2; half++) {
            /* 8x8 transpose of words 8*half .. 8*half+7 of the 8 lanes' blocks */
            __m256i r[8], t[8], u[2][4];
            for (int i = 0; i < 8; i++)
                r[i] = _mm256_loadu_si256((const __m256i *)(ptrs[i] + 64 * blk + 32 * half));
            for (int i = 0; i < 8; i += 2) {
                t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
                t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
            }
            for (int g = 0; g < 2; g++) {
                u[g][0] = _mm256_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
                u[g][1] = _mm256_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
                u[g][2] = _mm256_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
                u[g][3] = _mm256_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
            }
            for (int j = 0; j < 4; j++) {
                M[8 * half + j] = _mm256_permute2x128_si256(u[0][j], u[1][j], 0x20);
                M[8 * half + 4 + j] = _mm256_permute2x128_si256(u[0][j], u[1][j], 0x31);
            }
        }
        __m256i a = A, b = B, c = C, d = D;
        MD5_STEPS
        A = _mm256_add_epi32(A, a);
        B = _mm256_add_epi32(B, b);
        C = _mm256_add_epi32(C, c);
        D = _mm256_add_epi32(D, d);
    }
    _mm256_storeu_si256((__m256i *)st[0], A);
    _mm256_storeu_si256((__m256i *)st[1], B);
    _mm256_storeu_si256((__m256i *)st[2], C);
    _mm256_storeu_si256((__m256i *)st[3], D);
}

#undef V_ADD
#undef V_SET1
#undef V_ROL
#undef V_F
#undef V_G
#undef V_H
#undef V_I
#undef STEP

#endif /* MD5X_X86 */

/* ------------------------------------------------------------------ lane scheduler ---------------------------------------------------------- */

typedef struct {
    const uint8_t *data;
    size_t len;
} msg_t;

typedef struct {
    Py_ssize_t msg;    /* index of the message in this lane, -1 when idle */
    const uint8_t *p;  /* next block of the current segment */
    size_t left;       /* blocks left in the current segment */
    int in_tail;       /* 0: whole blocks read from the message itself; 1: the padded tail */
    int tail_blocks;
    uint8_t tail[128];
} lane_t;

typedef struct {
    size_t len;
    Py_ssize_t index;
} order_t;

static int cmp_longest_first(const void *x, const void *y)
{
    const order_t *a = x, *b = y;
    if (a->len != b->len)
        return a->len < b->len ? 1 : -1;
    return a->index < b->index ? -1 : (a->index > b->index);
}

static void lane_start(lane_t *ln, uint32_t st[4][MAX_LANES], int lane, Py_ssize_t index, const msg_t *m)
{
    ln->msg = index;
    ln->tail_blocks = md5_tail(ln->tail, m->data, m->len);
    if (m->len >= 64) {
        ln->p = m->data;
        ln->left = m->len / 64;
        ln->in_tail = 0;
    } else {
        ln->p = ln->tail;
        ln->left = (size_t)ln->tail_blocks;
        ln->in_tail = 1;
    }
    st[0][lane] = MD5_IV0;
    st[1][lane] = MD5_IV1;
    st[2][lane] = MD5_IV2;
    st[3][lane] = MD5_IV3;
}

/* Blocks a busy lane still has to compress. */
static size_t lane_remaining(const lane_t *ln)
{
    return ln->left + (ln->in_tail ? 0 : (size_t)ln->tail_blocks);
}

/* Hash all messages with a `lanes`-wide kernel. Once no message is waiting, the vector's time to finish is
 * the longest lane's, scalar code's the sum of all lanes': the rest goes to scalar code, one lane after the
 * other, when 100 * sum <= finish_scalar * longest (a scalar stream runs ~1.6x one lane's speed here). */
static int md5_many_lanes(const msg_t *msgs, Py_ssize_t n, uint8_t (*out)[16], int lanes, kernel_fn kernel, int finish_scalar)
{
    order_t *order = malloc(sizeof(order_t) * (size_t)(n > 0 ? n : 1));
    lane_t *ln = malloc(sizeof(lane_t) * MAX_LANES);
    if (!order || !ln) {
        free(order);
        free(ln);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        order[i].len = msgs[i].len;
        order[i].index = i;
    }
    /* longest first: the batch ends with short messages, so lanes finish close together */
    qsort(order, (size_t)n, sizeof(order_t), cmp_longest_first);

    uint32_t st[4][MAX_LANES];
    const uint8_t *ptrs[MAX_LANES];
    Py_ssize_t next = 0;
    int active = 0;
    memset(st, 0, sizeof(st));
    for (int i = 0; i < lanes; i++) {
        ln[i].msg = -1;
        if (next < n) {
            lane_start(&ln[i], st, i, order[next].index, &msgs[order[next].index]);
            next++;
            active++;
        }
    }
    while (active > 0) {
        if (next >= n) {
            size_t sum = 0, longest = 0;
            for (int i = 0; i < lanes; i++) {
                if (ln[i].msg >= 0) {
                    size_t r = lane_remaining(&ln[i]);
                    sum += r;
                    longest = r > longest ? r : longest;
                }
            }
            if ((double)sum * 100.0 <= (double)finish_scalar * (double)longest)
                break;
        }
        size_t k = SIZE_MAX;
        const uint8_t *any = NULL;
        for (int i = 0; i < lanes; i++) {
            if (ln[i].msg >= 0) {
                if (ln[i].left < k)
                    k = ln[i].left;
                any = ln[i].p;
            }
        }
        for (int i = 0; i < lanes; i++)
            ptrs[i] = ln[i].msg >= 0 ? ln[i].p : any; /* idle lanes re-read a busy lane's blocks; result unused */
        kernel(st, ptrs, k);
        for (int i = 0; i < lanes; i++) {
            if (ln[i].msg < 0)
                continue;
            ln[i].p += 64 * k;
            ln[i].left -= k;
            if (ln[i].left > 0)
                continue;
            if (!ln[i].in_tail) {
                ln[i].p = ln[i].tail;
                ln[i].left = (size_t)ln[i].tail_blocks;
                ln[i].in_tail = 1;
                continue;
            }
            uint32_t s[4] = {st[0][i], st[1][i], st[2][i], st[3][i]};
            md5_digest_out(out[ln[i].msg], s);
            if (next < n) {
                lane_start(&ln[i], st, i, order[next].index, &msgs[order[next].index]);
                next++;
            } else {
                ln[i].msg = -1;
                active--;
            }
        }
    }
    for (int i = 0; i < lanes; i++) {
        if (ln[i].msg < 0)
            continue;
        uint32_t s[4] = {st[0][i], st[1][i], st[2][i], st[3][i]};
        md5_blocks_scalar(s, ln[i].p, ln[i].left);
        if (!ln[i].in_tail)
            md5_blocks_scalar(s, ln[i].tail, (size_t)ln[i].tail_blocks);
        md5_digest_out(out[ln[i].msg], s);
    }
    free(order);
    free(ln);
    return 0;
}

/* ------------------------------------------------------------------ dispatch ---------------------------------------------------------------- */

enum { LEVEL_SCALAR = 0, LEVEL_AVX2 = 1, LEVEL_AVX512 = 2 };
static const char *const LEVEL_NAMES[] = {"scalar", "avx2x8", "avx512x16"};

static int best_level(void)
{
#if MD5X_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return LEVEL_AVX512;
    if (__builtin_cpu_supports("avx2"))
        return LEVEL_AVX2;
#endif
    return LEVEL_SCALAR;
}

static int hash_all(const msg_t *msgs, Py_ssize_t n, uint8_t (*out)[16], int level, int finish_scalar)
{
#if MD5X_X86
    if (level == LEVEL_AVX512)
        return md5_many_lanes(msgs, n, out, 16, md5_kernel_avx512, finish_scalar);
    if (level == LEVEL_AVX2)
        return md5_many_lanes(msgs, n, out, 8, md5_kernel_avx2, finish_scalar);
#endif
    (void)finish_scalar;
    for (Py_ssize_t i = 0; i < n; i++)
        md5_one_scalar(out[i], msgs[i].data, msgs[i].len);
    return 0;
}

/* ------------------------------------------------------------------ Python ------------------------------------------------------------------ */

static int g_best = LEVEL_SCALAR;

static int parse_level(PyObject *obj, int *level)
{
    if (obj == NULL || obj == Py_None) {
        *level = g_best;
        return 0;
    }
    for (int i = 0; i <= g_best; i++) {
        if (PyUnicode_Check(obj) && PyUnicode_CompareWithASCIIString(obj, LEVEL_NAMES[i]) == 0) {
            *level = i;
            return 0;
        }
    }
    PyErr_Format(PyExc_ValueError, "md5_many: level %R is not available on this CPU; use one of levels()", obj);
    return -1;
}

PyDoc_STRVAR(md5_many_doc,
             "md5_many(buffers, /, *, _level=None, _finish_scalar=160) -> list[bytes]\n\n"
             "16-byte MD5 digests of C-contiguous buffers, in order, hashed in SIMD lanes with the GIL released.\n"
             "_level forces a kernel (one of levels()); _finish_scalar (percent): once no buffer is waiting, the\n"
             "lanes' remaining blocks go to scalar code when 100 * their sum <= _finish_scalar * the longest lane's.");

static PyObject *md5_many(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"", "_level", "_finish_scalar", NULL};
    PyObject *seq_arg, *level_obj = NULL;
    int finish_scalar = 160, level;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$Oi:md5_many", kwlist, &seq_arg, &level_obj, &finish_scalar))
        return NULL;
    if (parse_level(level_obj, &level) < 0)
        return NULL;
    if (finish_scalar < 0) {
        PyErr_SetString(PyExc_ValueError, "md5_many: _finish_scalar must be >= 0");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(seq_arg, "md5_many: buffers must be a sequence of bytes-like objects");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), got = 0;
    PyObject *result = NULL;
    Py_buffer *views = PyMem_Calloc((size_t)(n > 0 ? n : 1), sizeof(Py_buffer));
    msg_t *msgs = PyMem_Malloc(sizeof(msg_t) * (size_t)(n > 0 ? n : 1));
    uint8_t (*out)[16] = PyMem_Malloc(16 * (size_t)(n > 0 ? n : 1));
    if (!views || !msgs || !out) {
        PyErr_NoMemory();
        goto done;
    }
    for (; got < n; got++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, got);
        if (PyObject_GetBuffer(item, &views[got], PyBUF_SIMPLE) < 0) {
            if (PyErr_ExceptionMatches(PyExc_BufferError)) {
                /* a strided memoryview: say which one, as ValueError (hashlib says BufferError) */
                PyErr_Clear();
                PyErr_Format(PyExc_ValueError,
                             "md5_many: buffer %zd is not C-contiguous; pass bytes(view) or a contiguous copy", got);
            }
            goto done;
        }
        msgs[got].data = views[got].buf;
        msgs[got].len = (size_t)views[got].len;
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = hash_all(msgs, n, out, level, finish_scalar);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        PyErr_NoMemory();
        goto done;
    }
    result = PyList_New(n);
    if (result == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *d = PyBytes_FromStringAndSize((const char *)out[i], 16);
        if (d == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, i, d);
    }
done:
    if (views) {
        for (Py_ssize_t i = 0; i < got; i++)
            PyBuffer_Release(&views[i]);
    }
    PyMem_Free(views);
    PyMem_Free(msgs);
    PyMem_Free(out);
    Py_DECREF(seq);
    return result;
}

PyDoc_STRVAR(levels_doc, "levels() -> tuple[str, ...]\n\nThe kernels this CPU can run, best first (md5_many uses the first).");

static PyObject *levels(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    PyObject *t = PyTuple_New(g_best + 1);
    if (t == NULL)
        return NULL;
    for (int i = g_best; i >= 0; i--) {
        PyObject *s = PyUnicode_FromString(LEVEL_NAMES[i]);
        if (s == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, g_best - i, s);
    }
    return t;
}

static PyMethodDef md5x_methods[] = {
    {"md5_many", (PyCFunction)(void (*)(void))md5_many, METH_VARARGS | METH_KEYWORDS, md5_many_doc},
    {"levels", levels, METH_NOARGS, levels_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef md5x_module = {
    PyModuleDef_HEAD_INIT, "isc_kit._md5x", "Multi-buffer MD5 (AVX-512 / AVX2 / scalar) over many buffers at once.", -1, md5x_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__md5x(void)
{
    g_best = best_level();
    return PyModule_Create(&md5x_module);
}
