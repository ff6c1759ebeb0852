// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// The verifier (BMV) of messages notarized by Nexus: for each source network it keeps one
/// proof context (the notary set of that source's notary channel and the last sequence number
/// delivered), and accepts a relay only if
///  1. more than 2/3 of the set signed the decision hash (Keccak-256, see `decisionHash`),
///     each signer in the set and counted once;
///  2. each message's Merkle path leads from its leaf to the decision's messages root, and the
///     leaf names this chain's network as the message's next hop;
///  3. sequence numbers are strict: the next one after the last delivered (lower: replay,
///     higher: gap), so nothing is delivered twice or out of order;
///  4. a decision that names a next notary set (signed by the current one) rotates the set
///     after its messages are checked.
/// Only the BMC calls `verify`; anyone may read the contexts.
contract NexusVerifier {
    bytes32 public constant DOMAIN = keccak256("nexus/btp-decision/1");
    uint256 public constant MAX_SET = 256;

    struct Msg {
        uint256 seq;
        bytes msg;
        bytes32[] path;
        uint256 sides; // bit i set: path[i] is the left sibling
    }

    struct Relay {
        string src;
        uint64 height;
        bytes32 blockHash;
        bytes32 messagesRoot;
        address[] nextSet;
        bytes[] sigs;
        Msg[] msgs;
    }

    struct Context {
        address[] set;
        uint64 height;
        uint256 rxSeq;
    }

    address public immutable bmc;
    bytes32 public immutable networkHash;
    address public owner;
    mapping(bytes32 => Context) internal contexts;
    mapping(bytes32 => mapping(address => uint256)) internal position; // 1-based

    event SetRotated(string src, uint64 height, address[] set);

    error NotBmc(address caller);
    error NotOwner(address caller);
    error UnknownSource(string src);
    error SourceExists(string src);
    error BadSet(string why);
    error OldDecision(uint64 height, uint64 last);
    error TooFewSignatures(uint256 valid, uint256 setSize);
    error BadSignature(uint256 index);
    error NotInSet(address signer);
    error DuplicateSigner(address signer);
    error BadPath(uint256 seq);
    error Replayed(uint256 seq, uint256 last);
    error Gap(uint256 expected, uint256 got);

    constructor(address bmc_, string memory network) {
        bmc = bmc_;
        networkHash = keccak256(bytes(network));
        owner = msg.sender;
    }

    /// Trusts `set` as the notary set of `src`'s channel (the checkpoint; once per source).
    function addSource(string calldata src, address[] calldata set) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        bytes32 key = keccak256(bytes(src));
        if (contexts[key].set.length != 0) revert SourceExists(src);
        install(key, set);
    }

    function context(string calldata src) external view returns (address[] memory set, uint64 height, uint256 rxSeq) {
        Context storage c = contexts[keccak256(bytes(src))];
        return (c.set, c.height, c.rxSeq);
    }

    /// What the notary set signs for one notary block.
    function decisionHash(
        string memory src,
        uint64 height,
        bytes32 blockHash,
        bytes32 messagesRoot,
        address[] memory nextSet
    ) public pure returns (bytes32) {
        return keccak256(
            abi.encode(
                DOMAIN,
                keccak256(bytes(src)),
                height,
                blockHash,
                messagesRoot,
                keccak256(abi.encodePacked(nextSet))
            )
        );
    }

    /// Leaf of a message in the decision's messages root.
    function leafHash(bytes32 next, uint256 seq, bytes memory message) public pure returns (bytes32) {
        return keccak256(abi.encodePacked(bytes1(0x00), next, seq, keccak256(message)));
    }

    /// Checks a relay (ABI-encoded `Relay`) and returns its source and messages in order.
    function verify(bytes calldata relay) external returns (string memory src, bytes[] memory msgs) {
        if (msg.sender != bmc) revert NotBmc(msg.sender);
        Relay memory r = abi.decode(relay, (Relay));
        bytes32 key = keccak256(bytes(r.src));
        Context storage c = contexts[key];
        uint256 n = c.set.length;
        if (n == 0) revert UnknownSource(r.src);
        if (r.height < c.height) revert OldDecision(r.height, c.height);
        checkSignatures(key, n, decisionHash(r.src, r.height, r.blockHash, r.messagesRoot, r.nextSet), r.sigs);
        msgs = new bytes[](r.msgs.length);
        uint256 seq = c.rxSeq;
        for (uint256 i = 0; i < r.msgs.length; i++) {
            Msg memory m = r.msgs[i];
            if (m.seq <= seq) revert Replayed(m.seq, seq);
            if (m.seq != seq + 1) revert Gap(seq + 1, m.seq);
            if (root(leafHash(networkHash, m.seq, m.msg), m.path, m.sides) != r.messagesRoot) revert BadPath(m.seq);
            seq = m.seq;
            msgs[i] = m.msg;
        }
        c.rxSeq = seq;
        c.height = r.height;
        if (r.nextSet.length != 0) {
            uninstall(key);
            install(key, r.nextSet);
            emit SetRotated(r.src, r.height, r.nextSet);
        }
        src = r.src;
    }

    function checkSignatures(bytes32 key, uint256 n, bytes32 digest, bytes[] memory sigs) internal view {
        uint256 seen; // bitmap over set positions (MAX_SET = 256)
        uint256 valid;
        for (uint256 i = 0; i < sigs.length; i++) {
            address signer = recover(digest, sigs[i], i);
            uint256 pos = position[key][signer];
            if (pos == 0) revert NotInSet(signer);
            uint256 bit = 1 << (pos - 1);
            if (seen & bit != 0) revert DuplicateSigner(signer);
            seen |= bit;
            valid++;
        }
        if (valid * 3 <= n * 2) revert TooFewSignatures(valid, n);
    }

    function recover(bytes32 digest, bytes memory sig, uint256 index) internal pure returns (address signer) {
        if (sig.length != 65) revert BadSignature(index);
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := mload(add(sig, 32))
            s := mload(add(sig, 64))
            v := byte(0, mload(add(sig, 96)))
        }
        if (v < 27) v += 27;
        // Lower-half s only (EIP-2), so one key gives one signature per digest.
        if (uint256(s) > 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0) revert BadSignature(index);
        signer = ecrecover(digest, v, r, s);
        if (signer == address(0)) revert BadSignature(index);
    }

    function root(bytes32 leaf, bytes32[] memory path, uint256 sides) internal pure returns (bytes32 h) {
        h = leaf;
        for (uint256 i = 0; i < path.length; i++) {
            h = (sides >> i) & 1 == 1
                ? keccak256(abi.encodePacked(bytes1(0x01), path[i], h))
                : keccak256(abi.encodePacked(bytes1(0x01), h, path[i]));
        }
    }

    function install(bytes32 key, address[] memory set) internal {
        if (set.length == 0 || set.length > MAX_SET) revert BadSet("expected 1..=256 notaries");
        Context storage c = contexts[key];
        for (uint256 i = 0; i < set.length; i++) {
            if (set[i] == address(0)) revert BadSet("zero address");
            if (position[key][set[i]] != 0) revert BadSet("an address twice");
            position[key][set[i]] = i + 1;
            c.set.push(set[i]);
        }
    }

    function uninstall(bytes32 key) internal {
        Context storage c = contexts[key];
        for (uint256 i = 0; i < c.set.length; i++) delete position[key][c.set[i]];
        delete c.set;
    }
}
