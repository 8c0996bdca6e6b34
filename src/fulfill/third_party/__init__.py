"""Third-party fulfillment: orders placed at a fulfiller such as Amazon MCF, and its stock."""
