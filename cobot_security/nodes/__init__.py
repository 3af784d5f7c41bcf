"""rclpy adapters (the only importers of rclpy and *_msgs): health_reporter, supervisor."""
