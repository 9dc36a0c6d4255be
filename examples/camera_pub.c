/*
 * camera_pub - the lecture's image sender: takes a 640x480 JPEG from the camera (/dev/video0,
 * through Video4Linux2) and sends it on the topic "jpeg" at QoS 0. Without a camera it sends
 * the JPEG file named on the command line instead.
 *
 * The Python it translates (paho-mqtt, OpenCV):
 *
 *     camera = cv2.VideoCapture(0)
 *     camera.set(cv2.CAP_PROP_FRAME_WIDTH, 640)
 *     camera.set(cv2.CAP_PROP_FRAME_HEIGHT, 480)
 *     ok, frame = camera.read()
 *     jpeg = cv2.imencode(".jpg", frame)[1].tobytes()
 *     client = mqtt.Client()
 *     client.connect("localhost", 1883, 60)
 *     info = client.publish("jpeg", jpeg, 0)
 *     info.wait_for_publish()
 *     client.disconnect()
 *
 * Usage: camera_pub [-h host] [-p port] [-d device] [file.jpg]
 *   -d   the camera device (default /dev/video0)
 * The camera asks for MJPEG, so each frame it hands over is already a JPEG: no encoder needed.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <unistd.h>

#include <midge/midge.h>

static int xioctl(int fd, unsigned long request, void *arg)
{
	int rc;

	do
		rc = ioctl(fd, request, arg);
	while (rc == -1 && errno == EINTR);
	return rc;
}

/* Waits up to 5 s for a frame. */
static int wait_frame(int fd)
{
	fd_set fds;
	struct timeval tv = {5, 0};

	FD_ZERO(&fds);
	FD_SET(fd, &fds);
	return select(fd + 1, &fds, NULL, NULL, &tv) > 0 ? 0 : -1;
}

/* Streaming I/O: one mmap'ed buffer; a few frames are dropped so that the camera's automatic
 * exposure settles. Returns a malloc'ed JPEG, or NULL. */
static void *capture_mmap(int fd, size_t *len)
{
	struct v4l2_requestbuffers req = {.count = 1, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
	                                  .memory = V4L2_MEMORY_MMAP};
	struct v4l2_buffer buf = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_MMAP};
	enum v4l2_buf_type type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	void *jpeg = NULL, *map;

	if (xioctl(fd, VIDIOC_REQBUFS, &req) == -1 || req.count < 1)
		return NULL;
	if (xioctl(fd, VIDIOC_QUERYBUF, &buf) == -1)
		return NULL;
	map = mmap(NULL, buf.length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, buf.m.offset);
	if (map == MAP_FAILED)
		return NULL;
	if (xioctl(fd, VIDIOC_STREAMON, &type) == -1)
		goto out;
	for (int frame = 0; frame < 5; frame++) {
		if (xioctl(fd, VIDIOC_QBUF, &buf) == -1 || wait_frame(fd) == -1 ||
		    xioctl(fd, VIDIOC_DQBUF, &buf) == -1)
			break;
		if (frame < 4)
			continue;
		jpeg = malloc(buf.bytesused);
		if (jpeg) {
			memcpy(jpeg, map, buf.bytesused);
			*len = buf.bytesused;
		}
	}
	xioctl(fd, VIDIOC_STREAMOFF, &type);
out:
	munmap(map, buf.length);
	return jpeg;
}

/* read() I/O, for drivers that offer it. */
static void *capture_read(int fd, size_t size, size_t *len)
{
	void *jpeg = malloc(size);
	ssize_t n;

	if (!jpeg || wait_frame(fd) == -1 || (n = read(fd, jpeg, size)) <= 0) {
		free(jpeg);
		return NULL;
	}
	*len = (size_t)n;
	return jpeg;
}

/* One 640x480 MJPEG frame from device, or NULL (no camera, no MJPEG, ...). */
static void *capture(const char *device, size_t *len)
{
	struct v4l2_capability cap;
	struct v4l2_format fmt = {.type = V4L2_BUF_TYPE_VIDEO_CAPTURE};
	void *jpeg = NULL;
	int fd = open(device, O_RDWR | O_NONBLOCK);

	if (fd == -1)
		return NULL;
	if (xioctl(fd, VIDIOC_QUERYCAP, &cap) == -1 ||
	    !(cap.capabilities & V4L2_CAP_VIDEO_CAPTURE))
		goto out;
	fmt.fmt.pix.width = 640;
	fmt.fmt.pix.height = 480;
	fmt.fmt.pix.pixelformat = V4L2_PIX_FMT_MJPEG;
	fmt.fmt.pix.field = V4L2_FIELD_ANY;
	if (xioctl(fd, VIDIOC_S_FMT, &fmt) == -1 || fmt.fmt.pix.pixelformat != V4L2_PIX_FMT_MJPEG)
		goto out;
	if (cap.capabilities & V4L2_CAP_STREAMING)
		jpeg = capture_mmap(fd, len);
	else if (cap.capabilities & V4L2_CAP_READWRITE)
		jpeg = capture_read(fd, fmt.fmt.pix.sizeimage ? fmt.fmt.pix.sizeimage : 640 * 480 * 2,
		                    len);
out:
	close(fd);
	return jpeg;
}

static void *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	long size;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		data = malloc((size_t)size + 1);
		if (data && fread(data, 1, (size_t)size, f) != (size_t)size) {
			free(data);
			data = NULL;
		}
		*len = (size_t)size;
	}
	fclose(f);
	return data;
}

int main(int argc, char **argv)
{
	const char *host = "localhost", *device = "/dev/video0", *source;
	int port = 1883, opt;
	size_t len = 0;
	void *jpeg;

	while ((opt = getopt(argc, argv, "h:p:d:")) != -1) {
		if (opt == 'h')
			host = optarg;
		else if (opt == 'p')
			port = atoi(optarg);
		else if (opt == 'd')
			device = optarg;
		else {
			fprintf(stderr, "usage: camera_pub [-h host] [-p port] [-d device] [file.jpg]\n");
			return 2;
		}
	}

	source = device;
	jpeg = capture(device, &len);
	if (!jpeg && optind < argc) {
		source = argv[optind];
		jpeg = read_file(source, &len);
		if (!jpeg) {
			fprintf(stderr, "camera_pub: cannot read %s: %s\n", source, strerror(errno));
			return 1;
		}
	}
	if (!jpeg) {
		fprintf(stderr, "camera_pub: no camera at %s and no JPEG file given\n", device);
		return 1;
	}

	midge_client *client = midge_client_new(NULL, true, NULL, MIDGE_PROTOCOL_V311,
	                                        MIDGE_TRANSPORT_TCP);
	int rc = midge_connect(client, host, port, 60);
	if (rc != MIDGE_OK) {
		fprintf(stderr, "camera_pub: cannot connect to %s:%d: %s\n", host, port,
		        midge_connack_string(rc));
		midge_client_free(client);
		free(jpeg);
		return 1;
	}
	int mid = midge_publish(client, "jpeg", jpeg, len, 0, false, NULL);
	if (mid > 0)
		rc = midge_wait_for_publish(client, mid, 30000);
	else
		rc = mid;
	if (rc == MIDGE_OK)
		printf("sent %zu bytes from %s on jpeg\n", len, source);
	else
		fprintf(stderr, "camera_pub: publish failed: %s\n", midge_strerror(rc));
	midge_disconnect(client);
	midge_client_free(client);
	free(jpeg);
	return rc == MIDGE_OK ? 0 : 1;
}
