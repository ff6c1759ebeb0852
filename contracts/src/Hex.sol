// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// Ethereum addresses as the text BTP messages carry (`0x` and 40 hex digits).
library Hex {
    /// Parses `0x` + 40 hex digits (either case).
    function parseAddress(string memory s) internal pure returns (address) {
        bytes memory b = bytes(s);
        require(b.length == 42 && b[0] == "0" && (b[1] == "x" || b[1] == "X"), "recipient: expected 0x and 40 hex digits");
        uint160 v = 0;
        for (uint256 i = 2; i < 42; i++) {
            uint8 c = uint8(b[i]);
            uint8 d;
            if (c >= 48 && c <= 57) d = c - 48;
            else if (c >= 97 && c <= 102) d = c - 87;
            else if (c >= 65 && c <= 70) d = c - 55;
            else revert("recipient: expected 0x and 40 hex digits");
            v = (v << 4) | d;
        }
        return address(v);
    }

    /// `0x` + 40 lowercase hex digits.
    function toText(address a) internal pure returns (string memory) {
        bytes memory out = new bytes(42);
        out[0] = "0";
        out[1] = "x";
        bytes16 digits = "0123456789abcdef";
        uint160 v = uint160(a);
        for (uint256 i = 41; i > 1; i--) {
            out[i] = digits[v & 0xf];
            v >>= 4;
        }
        return string(out);
    }
}
