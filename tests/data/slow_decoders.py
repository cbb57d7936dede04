"""Slow, plain-Python decoders written straight from the format documents.

They share no code with neuromorph's numba readers and serve as the independent reference in the
differential tests (random valid streams decoded by both must agree).
"""

import struct


def evt2_words(words):
    """Prophesee EVT 2.0: list of (x, y, t, p) for little-endian uint32 words (skip before first TIME_HIGH)."""
    out, base, have, last, loops = [], 0, False, 0, 0
    for w in words:
        typ = w >> 28
        if typ in (0, 1):
            if have:
                out.append(((w >> 11) & 0x7FF, w & 0x7FF, base + ((w >> 22) & 0x3F), typ))
        elif typ == 8:
            high = w & 0xFFFFFFF
            if have and last > high + 10:
                loops += 1
            have, last = True, high
            base = high * 64 + loops * 2**34
    return out


def evt3_words(words):
    """Prophesee EVT 3.0: list of (x, y, t, p) for little-endian uint16 words."""
    out, y, bx, pol, low, base, have, last, loops = [], 0, 0, 0, 0, 0, False, 0, 0
    for w in words:
        typ = w >> 12
        if typ == 0:
            y = w & 0x7FF
        elif typ == 2:
            if have:
                out.append((w & 0x7FF, y, base + low, (w >> 11) & 1))
        elif typ == 3:
            bx, pol = w & 0x7FF, (w >> 11) & 1
        elif typ in (4, 5):
            n = 12 if typ == 4 else 8
            for b in range(n):
                if have and (w >> b) & 1:
                    out.append((bx + b, y, base + low, pol))
            bx += n
        elif typ == 6:
            low = w & 0xFFF
        elif typ == 8:
            high = w & 0xFFF
            if have and last > high + 10:
                loops += 1
            have, last = True, high
            base = high * 4096 + loops * 2**24
    return out


def atis_records(data):
    """40-bit ATIS records -> (x, y, t, p), y == 240 adds 2**13 µs (Read_Ndataset.m)."""
    out, inc = [], 0
    for i in range(0, len(data), 5):
        x, y, b2, b3, b4 = data[i : i + 5]
        if y == 240:
            inc += 8192
            continue
        out.append((x, y, ((b2 & 127) << 16 | b3 << 8 | b4) + inc, b2 >> 7))
    return out


def aedat31_polarity_packets(data, header_end):
    """AEDAT 3.1 polarity events: (x, y, t, p) from every type-1 packet (28-byte header, 8-byte events)."""
    out, pos = [], header_end
    while pos < len(data):
        etype, source, esize, tsoff, tsovf, cap, num, valid = struct.unpack_from("<hhiiiiii", data, pos)
        pos += 28
        if etype == 1:
            for k in range(num):
                d, ts = struct.unpack_from("<Ii", data, pos + k * esize)
                if d & 1:
                    out.append(((d >> 17) & 0x7FFF, (d >> 2) & 0x7FFF, (tsovf << 31) | ts, (d >> 1) & 1))
        pos += cap * esize  # the packet holds eventCapacity slots (AEDAT 3.1 documentation)
    return out
