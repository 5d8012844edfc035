"""Private numerics of the optimizer: encoding, GP model, acquisition, designs, batch planning."""
