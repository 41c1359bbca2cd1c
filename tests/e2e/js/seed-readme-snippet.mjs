import { io } from "socket.io-client";

const socket = io("http://localhost:3000", {
  auth: {
    token: "your-jwt-token"
  }
});

// Listen for new notifications
socket.on("new_notification", (notification) => {
  console.log("New notification:", notification);
});

// Send a notification
socket.emit("send_notification", {
  recipientId: "user-123",
  message: "Hello, this is a test notification!"
}, (response) => {
  if (response.success) {
    console.log("Notification sent successfully");
  } else {
    console.error("Failed to send notification:", response.error);
  }
});
