// Placeholder: the guest library lands in the next commit.
export const version = '0';
