// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// An ERC-20 for a coin whose home is another chain (`btp-0x101.loop-ICX`): only the token
/// service mints (on arrival) and burns (on the way home).
contract WrappedToken {
    string public name;
    string public symbol;
    uint8 public constant decimals = 18;
    uint256 public totalSupply;
    address public immutable service;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    error NotService(address caller);
    error Insufficient(address owner, uint256 balance, uint256 needed);

    constructor(string memory name_, string memory symbol_) {
        name = name_;
        symbol = symbol_;
        service = msg.sender;
    }

    function transfer(address to, uint256 value) external returns (bool) {
        move(msg.sender, to, value);
        return true;
    }

    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 a = allowance[from][msg.sender];
        if (a < value) revert Insufficient(from, a, value);
        if (a != type(uint256).max) allowance[from][msg.sender] = a - value;
        move(from, to, value);
        return true;
    }

    function mint(address to, uint256 value) external {
        if (msg.sender != service) revert NotService(msg.sender);
        totalSupply += value;
        balanceOf[to] += value;
        emit Transfer(address(0), to, value);
    }

    function burn(address from, uint256 value) external {
        if (msg.sender != service) revert NotService(msg.sender);
        uint256 b = balanceOf[from];
        if (b < value) revert Insufficient(from, b, value);
        balanceOf[from] = b - value;
        totalSupply -= value;
        emit Transfer(from, address(0), value);
    }

    function move(address from, address to, uint256 value) internal {
        uint256 b = balanceOf[from];
        if (b < value) revert Insufficient(from, b, value);
        balanceOf[from] = b - value;
        balanceOf[to] += value;
        emit Transfer(from, to, value);
    }
}
