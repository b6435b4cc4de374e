"""The owner's workspace credential when the deploy carries none: pasted once in the page, checked
against the owner, kept 0600 in the state dir and in a secret only the app can read, renewed before
it expires (README, "Connect your workspace")."""
