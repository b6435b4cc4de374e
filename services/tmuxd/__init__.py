"""The tmux server as a supervised program: owns every shell."""
