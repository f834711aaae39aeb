"""The inbox: what a person is notified of, their notification preferences, and the fan-out of
an item to their devices. Domain code; the transports it hands pushes to (FCM, the local sink)
live in the top-level `notifications` package."""
