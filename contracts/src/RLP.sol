// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// RLP as BTP messages use it (IIP-25): byte strings, lists, and integers as the shortest
/// big-endian two's complement (zero is the single byte 0x00).
library RLP {
    error BadRlp(string what);

    struct Item {
        uint256 offset; // of the payload in the buffer
        uint256 length; // of the payload
        bool list;
    }

    // ---- encoding ----

    function encodeBytes(bytes memory b) internal pure returns (bytes memory) {
        if (b.length == 1 && uint8(b[0]) < 0x80) return b;
        return bytes.concat(lengthPrefix(b.length, 0x80), b);
    }

    function encodeString(string memory s) internal pure returns (bytes memory) {
        return encodeBytes(bytes(s));
    }

    function encodeList(bytes memory payload) internal pure returns (bytes memory) {
        return bytes.concat(lengthPrefix(payload.length, 0xc0), payload);
    }

    /// The shortest two's complement bytes of `v` (BTP integers).
    function intBytes(int256 v) internal pure returns (bytes memory out) {
        bytes32 full = bytes32(uint256(v));
        uint256 start = 0;
        while (start < 31) {
            uint8 b = uint8(full[start]);
            uint8 next = uint8(full[start + 1]);
            if ((b == 0x00 && next < 0x80) || (b == 0xff && next >= 0x80)) start++;
            else break;
        }
        out = new bytes(32 - start);
        for (uint256 i = 0; i < out.length; i++) out[i] = full[start + i];
    }

    function encodeInt(int256 v) internal pure returns (bytes memory) {
        return encodeBytes(intBytes(v));
    }

    /// Canonical RLP of an unsigned integer (no leading zeros; zero is the empty string).
    function encodeUint(uint256 v) internal pure returns (bytes memory) {
        if (v == 0) return hex"80";
        uint256 n = 0;
        for (uint256 x = v; x > 0; x >>= 8) n++;
        bytes memory b = new bytes(n);
        for (uint256 i = 0; i < n; i++) b[i] = bytes1(uint8(v >> (8 * (n - 1 - i))));
        return encodeBytes(b);
    }

    function lengthPrefix(uint256 len, uint8 base) private pure returns (bytes memory) {
        if (len < 56) return abi.encodePacked(uint8(base + len));
        uint256 n = 0;
        for (uint256 x = len; x > 0; x >>= 8) n++;
        bytes memory b = new bytes(n + 1);
        b[0] = bytes1(uint8(base + 55 + n));
        for (uint256 i = 0; i < n; i++) b[i + 1] = bytes1(uint8(len >> (8 * (n - 1 - i))));
        return b;
    }

    // ---- decoding (bounded by the buffer; every length checked) ----

    function item(bytes memory buf, uint256 at) internal pure returns (Item memory it, uint256 next) {
        if (at >= buf.length) revert BadRlp("truncated");
        uint8 p = uint8(buf[at]);
        uint256 len;
        uint256 start;
        if (p < 0x80) {
            return (Item(at, 1, false), at + 1);
        } else if (p < 0xb8) {
            (start, len) = (at + 1, p - 0x80);
            if (len == 1 && start < buf.length && uint8(buf[start]) < 0x80) revert BadRlp("non-canonical byte");
        } else if (p < 0xc0) {
            (start, len) = longLength(buf, at, p - 0xb7);
        } else if (p < 0xf8) {
            (start, len) = (at + 1, p - 0xc0);
            it.list = true;
        } else {
            (start, len) = longLength(buf, at, p - 0xf7);
            it.list = true;
        }
        if (start + len > buf.length) revert BadRlp("truncated");
        it.offset = start;
        it.length = len;
        next = start + len;
    }

    function longLength(bytes memory buf, uint256 at, uint256 n) private pure returns (uint256 start, uint256 len) {
        if (n > 4 || at + 1 + n > buf.length) revert BadRlp("length");
        if (uint8(buf[at + 1]) == 0) revert BadRlp("length with leading zero");
        for (uint256 i = 0; i < n; i++) len = (len << 8) | uint8(buf[at + 1 + i]);
        if (len < 56) revert BadRlp("long form for a short length");
        start = at + 1 + n;
    }

    /// The items of the list at the start of `buf` (which must hold exactly that list).
    function list(bytes memory buf, uint256 max) internal pure returns (Item[] memory items) {
        (Item memory l, uint256 end) = item(buf, 0);
        if (!l.list || end != buf.length) revert BadRlp("expected one list");
        items = new Item[](max);
        uint256 count = 0;
        uint256 at = l.offset;
        while (at < end) {
            if (count == max) revert BadRlp("too many items");
            (items[count], at) = item(buf, at);
            count++;
        }
        assembly {
            mstore(items, count)
        }
    }

    function toBytes(bytes memory buf, Item memory it) internal pure returns (bytes memory out) {
        if (it.list) revert BadRlp("expected bytes, got a list");
        out = new bytes(it.length);
        uint256 len = it.length;
        uint256 from = it.offset;
        assembly {
            mcopy(add(out, 32), add(add(buf, 32), from), len)
        }
    }

    function toInt(bytes memory buf, Item memory it) internal pure returns (int256 v) {
        if (it.list || it.length == 0 || it.length > 32) revert BadRlp("expected an integer of 1..32 bytes");
        uint256 u = 0;
        for (uint256 i = 0; i < it.length; i++) u = (u << 8) | uint8(buf[it.offset + i]);
        uint256 bits = it.length * 8;
        if (bits < 256 && (u >> (bits - 1)) & 1 == 1) u |= type(uint256).max << bits;
        v = int256(u);
    }

    function toUint(bytes memory buf, Item memory it) internal pure returns (uint256 u) {
        if (it.list || it.length > 32) revert BadRlp("expected an unsigned integer of 0..32 bytes");
        if (it.length > 0 && uint8(buf[it.offset]) == 0) revert BadRlp("integer with leading zero");
        for (uint256 i = 0; i < it.length; i++) u = (u << 8) | uint8(buf[it.offset + i]);
    }
}
