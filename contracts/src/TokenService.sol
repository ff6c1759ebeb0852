// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {RLP} from "./RLP.sol";
import {Hex} from "./Hex.sol";
import {IService, IBmcSend} from "./BMC.sol";
import {WrappedToken} from "./WrappedToken.sol";

/// The `token` service of an Ethereum chain, with the same message as the loopchain chains'
/// (`RLP[from, to, token, amount]`):
/// - Ether sent away (`transferNative`) stays locked here, counted per destination network, so
///   a network can only send back what was sent to it; it arrives elsewhere as
///   `btp-<this network>-ETH`;
/// - coins of other networks arrive as ERC-20s (`WrappedToken`, one per token id, created on
///   first arrival) and go home with `transferWrapped` (burned here);
/// - every transfer is settled by the destination's reply: delivered, or refunded (Ether
///   unlocked to the sender, or the ERC-20 minted back).
contract TokenService is IService {
    string public constant SERVICE = "token";

    struct Pending {
        address from;
        string token;
        uint256 amount;
        string network;
    }

    IBmcSend public immutable bmc;
    string public network;
    string public nativeToken;
    uint256 public serial;
    mapping(bytes32 => uint256) public lockedFor; // keccak(network) => wei locked for it
    mapping(bytes32 => address) public wrapped; // keccak(token id) => ERC-20
    mapping(uint256 => Pending) internal pending;

    event TransferStart(address indexed from, string to, uint256 indexed sn, uint256 value);
    event TransferEnd(address indexed from, uint256 indexed sn, int256 code, string message);
    event WrappedCreated(string token, address erc20);

    error NotBmc(address caller);

    constructor(address bmc_, string memory network_) {
        bmc = IBmcSend(bmc_);
        network = network_;
        nativeToken = string.concat("btp-", network_, "-ETH");
    }

    /// Sends the attached Ether to `to` (`<network>/<account>`).
    function transferNative(string calldata to) external payable returns (uint256) {
        if (msg.value == 0) revert("send the Ether to move as the value (got 0)");
        (string memory net, string memory account) = splitAddress(to);
        lockedFor[keccak256(bytes(net))] += msg.value;
        return start(net, account, to, nativeToken, msg.value);
    }

    /// Sends `amount` of a wrapped coin home to `to` (which must be on its home network).
    function transferWrapped(string calldata token, uint256 amount, string calldata to) external returns (uint256) {
        if (amount == 0) revert("amount: expected more than 0");
        (string memory net, string memory account) = splitAddress(to);
        if (keccak256(bytes(home(token))) != keccak256(bytes(net))) {
            revert(string.concat(token, " goes back to its home network only"));
        }
        address erc20 = wrapped[keccak256(bytes(token))];
        if (erc20 == address(0)) revert(string.concat("no wrapped ", token, " here"));
        WrappedToken(erc20).burn(msg.sender, amount);
        return start(net, account, to, token, amount);
    }

    function start(string memory net, string memory account, string memory to, string memory token, uint256 amount)
        internal
        returns (uint256 sn)
    {
        sn = ++serial;
        pending[sn] = Pending(msg.sender, token, amount, net);
        bytes memory m = RLP.encodeList(
            bytes.concat(
                RLP.encodeString(Hex.toText(msg.sender)),
                RLP.encodeString(account),
                RLP.encodeString(token),
                RLP.encodeUint(amount)
            )
        );
        bmc.sendMessage(net, SERVICE, int256(sn), m);
        emit TransferStart(msg.sender, to, sn, amount);
    }

    /// A transfer from `src`: Ether coming home is unlocked, another network's coin is minted.
    function handleBTPMessage(string calldata src, int256, bytes calldata payload) external {
        if (msg.sender != address(bmc)) revert NotBmc(msg.sender);
        bytes memory m = payload;
        RLP.Item[] memory it = RLP.list(m, 4);
        if (it.length != 4) revert("expected [from, to, token, amount]");
        address to = Hex.parseAddress(string(RLP.toBytes(m, it[1])));
        string memory token = string(RLP.toBytes(m, it[2]));
        uint256 amount = RLP.toUint(m, it[3]);
        if (amount == 0) revert("amount 0");
        if (keccak256(bytes(token)) == keccak256(bytes(nativeToken))) {
            bytes32 k = keccak256(bytes(src));
            if (lockedFor[k] < amount) revert("more Ether than was sent to that network");
            lockedFor[k] -= amount;
            (bool ok,) = to.call{value: amount}("");
            if (!ok) revert("the recipient refused the Ether");
            return;
        }
        if (keccak256(bytes(home(token))) != keccak256(bytes(src))) revert("not the sender's own coin");
        wrappedFor(token).mint(to, amount);
    }

    /// The reply to one of our transfers: delivered, or refunded.
    function handleBTPError(string calldata, int256 sn, int256 code, string calldata message) external {
        if (msg.sender != address(bmc)) revert NotBmc(msg.sender);
        if (sn <= 0) return;
        Pending memory p = pending[uint256(sn)];
        if (p.from == address(0)) return; // not ours, or settled already
        delete pending[uint256(sn)];
        if (code != 0) {
            if (keccak256(bytes(p.token)) == keccak256(bytes(nativeToken))) {
                lockedFor[keccak256(bytes(p.network))] -= p.amount;
                (bool ok,) = p.from.call{value: p.amount}("");
                if (!ok) revert("the refund was refused");
            } else {
                wrappedFor(p.token).mint(p.from, p.amount);
            }
        }
        emit TransferEnd(p.from, uint256(sn), code, message);
    }

    function pendingOf(uint256 sn) external view returns (address from, string memory token, uint256 amount) {
        Pending storage p = pending[sn];
        return (p.from, p.token, p.amount);
    }

    function wrappedFor(string memory token) internal returns (WrappedToken w) {
        bytes32 k = keccak256(bytes(token));
        w = WrappedToken(wrapped[k]);
        if (address(w) == address(0)) {
            w = new WrappedToken(token, token);
            wrapped[k] = address(w);
            emit WrappedCreated(token, address(w));
        }
    }

    /// The home network of `btp-<network>-<SYMBOL>`.
    function home(string memory token) internal pure returns (string memory) {
        bytes memory b = bytes(token);
        if (b.length < 7 || b[0] != "b" || b[1] != "t" || b[2] != "p" || b[3] != "-") revert("token id");
        uint256 dash = b.length;
        for (uint256 i = b.length - 1; i > 4; i--) {
            if (b[i] == "-") {
                dash = i;
                break;
            }
        }
        if (dash == b.length || dash == b.length - 1) revert("token id");
        bytes memory net = new bytes(dash - 4);
        for (uint256 i = 0; i < net.length; i++) net[i] = b[4 + i];
        return string(net);
    }

    function splitAddress(string calldata to) internal pure returns (string memory net, string memory account) {
        bytes calldata b = bytes(to);
        for (uint256 i = 0; i < b.length; i++) {
            if (b[i] == "/") {
                if (i == 0 || i + 1 == b.length) break;
                return (string(b[:i]), string(b[i + 1:]));
            }
        }
        revert("to: expected <network>/<account>");
    }
}
