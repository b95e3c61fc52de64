"""Running the project's Kestra flows without Kestra: a minimal expression renderer and a task
emulator covering exactly the constructs and task types the flows in flows/ use."""
