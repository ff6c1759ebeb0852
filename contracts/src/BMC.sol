// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {RLP} from "./RLP.sol";

/// What the BMC calls on a service (BSH).
interface IService {
    function handleBTPMessage(string calldata src, int256 sn, bytes calldata msg) external;
    function handleBTPError(string calldata src, int256 sn, int256 code, string calldata message) external;
}

/// What a service calls on the BMC.
interface IBmcSend {
    function sendMessage(string calldata to, string calldata svc, int256 sn, bytes calldata payload) external;
}

/// What the BMC asks of its verifier.
interface IVerifier {
    function verify(bytes calldata relay) external returns (string memory src, bytes[] memory msgs);
}

/// The BTP message center of an Ethereum chain, with the same roles and events as the
/// loopchain BMC: services send through `sendMessage` (one `Message` event per message, one
/// sequence for the link to Nexus); relayers deliver notarized messages through
/// `handleRelayMessage`, which the verifier checks before anything is dispatched. A request
/// (`sn > 0`) gets a reply `[code, message]` (0 delivered, 3 no service, 4 service reverted);
/// a reply (`sn < 0`) goes to the service's `handleBTPError`.
contract BMC {
    int256 public constant OK = 0;
    int256 public constant NO_SERVICE = 3;
    int256 public constant SERVICE_REVERTED = 4;

    string public network;
    address public owner;
    IVerifier public verifier;
    uint256 public txSeq;
    mapping(bytes32 => address) public services;
    bool private delivering;

    event Message(string next, uint256 indexed seq, bytes msg);
    event BTPEvent(string src, int256 nsn, string next, string what);

    error NotOwner(address caller);
    error VerifierSet();
    error NotService(string svc, address caller);
    error WrongDestination(string expected, string got);
    error WrongSource(string expected, string got);
    error Reentered();

    constructor(string memory network_) {
        network = network_;
        owner = msg.sender;
    }

    function setVerifier(address v) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        if (address(verifier) != address(0)) revert VerifierSet();
        verifier = IVerifier(v);
    }

    function addService(string calldata svc, address handler) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        services[keccak256(bytes(svc))] = handler;
    }

    /// Sends a service's message to `to` (a network address such as `0x3.loop`).
    function sendMessage(string calldata to, string calldata svc, int256 sn, bytes calldata payload) external {
        if (services[keccak256(bytes(svc))] != msg.sender || msg.sender == address(0)) {
            revert NotService(svc, msg.sender);
        }
        send(to, svc, sn, payload, 0);
    }

    function send(string memory to, string memory svc, int256 sn, bytes memory payload, int256 nsn) internal {
        uint256 seq = ++txSeq;
        if (nsn == 0) nsn = int256(seq);
        bytes memory m = RLP.encodeList(
            bytes.concat(
                RLP.encodeString(network),
                RLP.encodeString(to),
                RLP.encodeString(svc),
                RLP.encodeInt(sn),
                RLP.encodeBytes(payload),
                RLP.encodeInt(nsn)
            )
        );
        emit Message(to, seq, m);
        emit BTPEvent(network, nsn, to, "SEND");
    }

    /// Delivers a relay of notarized messages (checked by the verifier first).
    /// Not reentrant: a service or a recipient called during delivery cannot slip a later
    /// relay in before the rest of this one.
    function handleRelayMessage(bytes calldata relay) external {
        if (delivering) revert Reentered();
        delivering = true;
        (string memory src, bytes[] memory msgs) = verifier.verify(relay);
        for (uint256 i = 0; i < msgs.length; i++) {
            deliver(src, msgs[i]);
        }
        delivering = false;
    }

    function deliver(string memory src, bytes memory m) internal {
        RLP.Item[] memory it = RLP.list(m, 6);
        if (it.length != 6) revert RLP.BadRlp("expected [src, dst, svc, sn, msg, nsn]");
        string memory msrc = string(RLP.toBytes(m, it[0]));
        string memory dst = string(RLP.toBytes(m, it[1]));
        string memory svc = string(RLP.toBytes(m, it[2]));
        int256 sn = RLP.toInt(m, it[3]);
        bytes memory payload = RLP.toBytes(m, it[4]);
        int256 nsn = RLP.toInt(m, it[5]);
        if (keccak256(bytes(dst)) != keccak256(bytes(network))) revert WrongDestination(network, dst);
        if (keccak256(bytes(msrc)) != keccak256(bytes(src))) revert WrongSource(src, msrc);
        emit BTPEvent(msrc, nsn, network, "RECEIVE");
        address handler = services[keccak256(bytes(svc))];
        if (sn < 0) {
            RLP.Item[] memory r = RLP.list(payload, 2);
            if (handler == address(0) || r.length != 2) {
                emit BTPEvent(msrc, nsn, network, "DROP");
                return;
            }
            try IService(handler).handleBTPError(msrc, -sn, RLP.toInt(payload, r[0]), string(RLP.toBytes(payload, r[1]))) {}
            catch {
                emit BTPEvent(msrc, nsn, network, "DROP");
            }
            return;
        }
        int256 code = OK;
        string memory why = "";
        if (handler == address(0)) {
            (code, why) = (NO_SERVICE, string.concat("no service ", svc));
        } else {
            try IService(handler).handleBTPMessage(msrc, sn, payload) {}
            catch Error(string memory reason) {
                (code, why) = (SERVICE_REVERTED, reason);
            } catch {
                (code, why) = (SERVICE_REVERTED, "the service reverted");
            }
        }
        if (sn == 0) {
            if (code != OK) emit BTPEvent(msrc, nsn, network, "DROP");
            return;
        }
        send(msrc, svc, -sn, RLP.encodeList(bytes.concat(RLP.encodeInt(code), RLP.encodeString(why))), -nsn);
    }
}
