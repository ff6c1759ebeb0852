// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {RLP} from "./RLP.sol";
import {Hex} from "./Hex.sol";
import {IService, IBmcSend} from "./BMC.sol";

/// The DEX's ETH reserve on Ethereum (service `dex`): the converter SCORE on Nexus keeps the
/// book; this contract holds the Ether and moves it only on a verified message.
/// - `swap(hx, minReturn)`: Ether in, a `swap` request to the converter
///   (`RLP["swap", from, to, amount, minReturn]`); the Ether is held until the reply: on code 0
///   it joins the reserve, on any other code it goes back to the trader.
/// - `deposit(hx)`: Ether a liquidity provider brings (`RLP["deposit", from, to, amount]`),
///   credited to `to` on Nexus, where `addLiquidity` puts it in the pool; held the same way
///   until the converter's reply.
/// - a `pay` message from the converter (`RLP["pay", to, amount]`) pays Ether out of the
///   reserve, never more than it holds (otherwise the delivery fails and the converter refunds).
contract DexReserve is IService {
    string public constant SERVICE = "dex";

    struct Held {
        address from;
        uint256 amount;
    }

    IBmcSend public immutable bmc;
    string public converterNetwork;
    uint256 public reserve; // Ether the pool owns
    uint256 public held; // Ether of swaps waiting for their reply
    uint256 public serial;
    mapping(uint256 => Held) public pending;

    event SwapStarted(address indexed from, string to, uint256 indexed sn, uint256 amount, uint256 minReturn);
    event DepositStarted(address indexed from, string to, uint256 indexed sn, uint256 amount);
    event SwapEnded(address indexed from, uint256 indexed sn, int256 code, string message);
    event PaidOut(address indexed to, uint256 amount);

    error NotBmc(address caller);

    constructor(address bmc_, string memory converterNetwork_) {
        bmc = IBmcSend(bmc_);
        converterNetwork = converterNetwork_;
    }

    function checkHx(string calldata to) private pure {
        bytes memory t = bytes(to);
        require(t.length == 42 && t[0] == "h" && t[1] == "x", "to: expected an hx address");
    }

    /// Trades the attached Ether for ICX at `to` (an hx address), at least `minReturn` loop.
    function swap(string calldata to, uint256 minReturn) external payable returns (uint256 sn) {
        require(msg.value > 0, "send the Ether to trade as the value (got 0)");
        checkHx(to);
        sn = ++serial;
        pending[sn] = Held(msg.sender, msg.value);
        held += msg.value;
        bytes memory m = RLP.encodeList(
            bytes.concat(
                RLP.encodeString("swap"),
                RLP.encodeString(Hex.toText(msg.sender)),
                RLP.encodeString(to),
                RLP.encodeUint(msg.value),
                RLP.encodeUint(minReturn)
            )
        );
        bmc.sendMessage(converterNetwork, SERVICE, int256(sn), m);
        emit SwapStarted(msg.sender, to, sn, msg.value, minReturn);
    }

    /// Deposits the attached Ether for liquidity, credited to `to` (an hx address) on Nexus.
    function deposit(string calldata to) external payable returns (uint256 sn) {
        require(msg.value > 0, "send the Ether to deposit as the value (got 0)");
        checkHx(to);
        sn = ++serial;
        pending[sn] = Held(msg.sender, msg.value);
        held += msg.value;
        bytes memory m = RLP.encodeList(
            bytes.concat(
                RLP.encodeString("deposit"),
                RLP.encodeString(Hex.toText(msg.sender)),
                RLP.encodeString(to),
                RLP.encodeUint(msg.value)
            )
        );
        bmc.sendMessage(converterNetwork, SERVICE, int256(sn), m);
        emit DepositStarted(msg.sender, to, sn, msg.value);
    }

    /// A payout from the converter: `RLP["pay", to, amount]`.
    function handleBTPMessage(string calldata src, int256, bytes calldata payload) external {
        if (msg.sender != address(bmc)) revert NotBmc(msg.sender);
        require(keccak256(bytes(src)) == keccak256(bytes(converterNetwork)), "only the converter pays out");
        bytes memory m = payload;
        RLP.Item[] memory it = RLP.list(m, 3);
        require(it.length == 3 && keccak256(RLP.toBytes(m, it[0])) == keccak256("pay"), "expected [pay, to, amount]");
        address to = Hex.parseAddress(string(RLP.toBytes(m, it[1])));
        uint256 amount = RLP.toUint(m, it[2]);
        require(amount > 0, "amount 0");
        require(amount <= reserve, "more than the reserve holds");
        reserve -= amount;
        (bool ok,) = to.call{value: amount}("");
        require(ok, "the recipient refused the Ether");
        emit PaidOut(to, amount);
    }

    /// The converter's reply to a swap or a deposit: code 0 keeps the Ether in the reserve, any
    /// other code refunds it.
    function handleBTPError(string calldata, int256 sn, int256 code, string calldata message) external {
        if (msg.sender != address(bmc)) revert NotBmc(msg.sender);
        if (sn <= 0) return;
        Held memory h = pending[uint256(sn)];
        if (h.from == address(0)) return;
        delete pending[uint256(sn)];
        held -= h.amount;
        if (code == 0) {
            reserve += h.amount;
        } else {
            (bool ok,) = h.from.call{value: h.amount}("");
            require(ok, "the refund was refused");
        }
        emit SwapEnded(h.from, uint256(sn), code, message);
    }
}
