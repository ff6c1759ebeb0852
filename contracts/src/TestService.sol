// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IService} from "./BMC.sol";

/// A service for the contract tests only: records the hash of what the BMC delivers (one storage
/// slot per message, about what a token transfer writes), refuses payloads that start with
/// "fail", tries to deliver the rest of a payload that starts with "reenter" as a relay (which
/// the BMC must refuse), and sends messages through the BMC on request.
contract TestService is IService {
    address public immutable bmc;
    bytes32[] public received;
    int256 public lastErrorCode;
    string public lastErrorMessage;

    constructor(address bmc_) {
        bmc = bmc_;
    }

    function receivedCount() external view returns (uint256) {
        return received.length;
    }

    function handleBTPMessage(string calldata, int256, bytes calldata msg_) external {
        require(msg.sender == bmc, "only the BMC");
        require(!(msg_.length >= 4 && bytes4(msg_[0:4]) == bytes4("fail")), "refused by the test service");
        if (msg_.length >= 7 && keccak256(msg_[0:7]) == keccak256("reenter")) {
            (bool ok, bytes memory err) = bmc.call(abi.encodeWithSignature("handleRelayMessage(bytes)", msg_[7:]));
            if (!ok) {
                assembly {
                    revert(add(err, 32), mload(err))
                }
            }
        }
        received.push(keccak256(msg_));
    }

    function handleBTPError(string calldata, int256, int256 code, string calldata message) external {
        require(msg.sender == bmc, "only the BMC");
        lastErrorCode = code;
        lastErrorMessage = message;
    }

    function send(string calldata to, int256 sn, bytes calldata payload) external {
        (bool ok, bytes memory err) =
            bmc.call(abi.encodeWithSignature("sendMessage(string,string,int256,bytes)", to, "test", sn, payload));
        if (!ok) {
            assembly {
                revert(add(err, 32), mload(err))
            }
        }
    }
}
